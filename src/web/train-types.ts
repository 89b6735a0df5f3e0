// What the train page, its worker and the server exchange (no Node import: bundled into the page too).

/** A training setup, from the page's URL or form (`/train?dataset=NAME&size=32&ngf=8&...`). */
export interface TrainSettings {
  dataset: string;
  size: number;
  ngf: number;
  /** UNet levels; 0: log2 of the size, as the CLI's --depth. */
  depth: number;
  batch: number;
  steps: number;
  seed: number;
  /** Adam's learning rate (both networks), as --lr. */
  lr: number;
  /** Save the state to IndexedDB every this many steps (and at the end). */
  saveEvery: number;
  /** `auto`: WebGPU on a hardware adapter, else WASM; `webgpu`: any adapter the browser has. */
  backend: 'auto' | 'webgpu' | 'wasm';
}

/** Kept in `document.body.dataset.trainStatus` as JSON, for people and scripts alike. */
export interface TrainStatus {
  state: 'idle' | 'loading' | 'training' | 'paused' | 'done' | 'error';
  backend?: string;
  adapter?: string;
  /** Steps since the start of the run. */
  step: number;
  epoch: number;
  losses?: { gGan: number; gL1: number; d: number };
  /** The step of the last state saved in the browser (0: none yet). */
  savedStep: number;
  /** The one-line message, absent when none. */
  error?: string;
  /** The saved step this run resumed from (a reload, a crashed tab), when it did. */
  resumedFrom?: number;
  /** Why WebGPU is not used, when it is not. */
  note?: string;
  params?: number;
  imagesPerSec?: number;
}

export type WorkerMessage = { type: 'status'; status: TrainStatus };

/** What the page tells the worker: start a run, or pause (after the step in flight, saved) and resume it. */
export type PageMessage = { type: 'start'; settings: TrainSettings } | { type: 'pause' } | { type: 'resume' };

/** `/api/datasets`: the prepared datasets `serve --data` offers. */
export interface DatasetSummary {
  name: string;
  train: number;
  test: number;
}

/** `/api/dataset?name=`: the pair file names of each split (A/ and B/ hold the same names). */
export interface DatasetPairs {
  name: string;
  train: string[];
  test: string[];
}

/** What makes a saved state this setup's: the settings that define the run (not its length or backend). */
export function savedKey(s: TrainSettings): string {
  return JSON.stringify([s.dataset, s.size, s.ngf, s.depth, s.batch, s.seed, s.lr]);
}
