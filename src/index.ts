/**
 * pix2pix-ts as a library: the same workflow as the CLI (prepare -> train -> evaluate -> compare ->
 * translate / export), without the terminal. Choose a backend first (`setupBackend`), as the CLI does.
 */
export { BACKENDS, type BackendChoice, setupBackend } from './backend/index.js';
export { type PrepareOptions, prepareDataset } from './data/prepare.js';
export {
  evaluateGenerator,
  evaluateRun as evaluate,
  type RunEvalOptions,
  type RunEvalResult,
} from './eval/evaluate.js';
export { type ImageMetrics, imageMetrics, uint8Metrics } from './eval/metrics.js';
export { type CompareOptions, type CompareResult, compareRuns } from './experiment/compare.js';
export { type ExportMetadata, type ExportOptions, type ExportResult, exportModel } from './export/index.js';
export { type EpochChoice, type LoadedGenerator, loadGenerator } from './infer/load.js';
export {
  type FlexibleGenerator,
  flexibleGenerator,
  type TranslateImageOptions,
  translateImage,
} from './infer/tiling.js';
export { type TranslateOptions, type TranslateResult, translate } from './infer/translate.js';
export {
  InstanceNorm,
  loadModel,
  patchDiscriminator,
  saveModel,
  unetGenerator,
} from './models/index.js';
export type { EvalRow } from './run/records.js';
export { DEFAULT_CONFIG, type TrainConfig, validateConfig } from './train/config.js';
export { type EpochEvent, type StepEvent, type TrainHooks, train } from './train/loop.js';
export { type Logger, UserError } from './util/log.js';
export { type ServeHandle, type ServeOptions, serve } from './web/index.js';
