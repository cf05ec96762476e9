/**
 * The benchmark and the demo as a library: `runBench` runs the seed's operations in their original form
 * and ours side by side and returns the JSON contract; `runDemo` is the one-command tour; the report
 * functions turn a result into Markdown, HTML and SVG charts.
 */
export { runBench, type BenchOptions, type BenchEvent } from './runner.js';
export { runDemo, DEMO_ROWS, type DemoOptions, type DemoResult } from './demo.js';
export type { BenchReport, ScenarioResult, MachineInfo, ExtraValue } from './types.js';
export {
  SCENARIO_NAMES, DEMO_SCENARIOS, MIN_BENCH_ROWS, parseBenchRows, parseRowList, parseScenarioList, formatRowCount, type ScenarioName,
} from './options.js';
export { median, logLogSlope, speedup } from './stats.js';
export { lineChartSvg, barChartSvg, escapeXml, type ChartSeries, type ChartPoint, type Bar } from './chart.js';
export {
  renderMarkdown, renderHtml, renderTextTable, renderPlans, scenarioChartSvg, speedupChartSvg, timeGridSvg, writeReport, formatDuration, formatSpeedup,
} from './report.js';
export { openBenchTarget, BENCH_SCHEMA, MARKER_TABLE, DEFAULT_DATABASE_PREFIX, type BenchTarget, type BenchTargetOptions } from './target.js';
