// What the train page, its worker and the server exchange (no Node import: bundled into the page too).

/** A training setup, from the page's URL or form (`/train?dataset=NAME&size=32&ngf=8&...`). */
export interface TrainSettings {
  dataset: string;
  size: number;
  ngf: number;
  /** The discriminator's first-stage width, as the CLI's --ndf. */
  ndf: number;
  /** UNet levels; 0: log2 of the size, as the CLI's --depth. */
  depth: number;
  batch: number;
  steps: number;
  seed: number;
  /** Adam's learning rate (both networks), as --lr; 0: the preset's, else 2e-4. */
  lr: number;
  /**
   * A preset of `pix2pix train --preset` ('' none): its model, losses, rate and schedule (its L1-only
   * epochs and decay), on whole pairs at `size` (the page does not crop or degrade on the fly).
   */
  preset: string;
  /** Save the state to IndexedDB every this many steps (and at the end). */
  saveEvery: number;
  /** `auto`: WebGPU on a hardware adapter, else WASM; `webgpu`: any adapter the browser has. */
  backend: 'auto' | 'webgpu' | 'wasm';
  /**
   * A run `serve --runs` offers, to fine-tune: its latest checkpoint's networks (the model's size,
   * ngf, depth and norm are the run's), new optimizers. '' trains from scratch.
   */
  finetune: string;
  /**
   * What dropped files are (a prepared dataset's layout is known): `auto` takes folders A/ and B/
   * as pairs, else one 2:1 image as aligned A|B pairs, else photos.
   */
  kind: 'auto' | 'aligned' | 'folders' | 'photos';
  /** The degradation that makes A from dropped photos, as prepare's --degrade (e.g. gaussian:25). */
  degrade: string;
  /**
   * Keep the first step's losses and gradients for `firstStep()` (window.p2pTrain), to check the
   * page's step against Node's.
   */
  probe: boolean;
}

/** One evaluation on the held-out pairs (mean over them), at the end of an epoch and of the run. */
export interface PageEvalRow {
  epoch: number;
  step: number;
  psnr: number;
  ssim: number;
  mae: number;
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
  /** Both networks' parameters. */
  params?: number;
  /** A rough bound on the memory a step holds (weights, Adam's moments, activations), in bytes. */
  memoryBytes?: number;
  imagesPerSec?: number;
  /** Pairs on each side of the split (by source photo), and how many sources each came from. */
  pairs?: { kind?: string; train: number; test: number; trainSources?: number; testSources?: number };
  /** What loading is doing now (decoding and cutting dropped images). */
  progress?: string;
  /** The model trained (from the settings, or the fine-tuned run's). */
  model?: { size: number; ngf: number; ndf: number; depth: number; norm: string };
  /** The learning rate of the step last trained, and whether D trained in it (not in L1-only epochs). */
  lr?: number;
  adversarial?: boolean;
  /** The run fine-tuned, and its checkpoint's epoch/step, when it is one. */
  finetunedFrom?: string;
  /** Every evaluation so far, oldest first. */
  evals?: PageEvalRow[];
  /** The epoch of the newest sample grid sent. */
  gridEpoch?: number;
}

export type WorkerMessage =
  | { type: 'status'; status: TrainStatus }
  /** The newest sample grid (input | target | output of a few held-out pairs), a PNG. */
  | { type: 'grid'; epoch: number; png: Blob }
  /** With `probe`: the first step's losses and its gradients per update, in variable order. */
  | { type: 'probe'; losses: { gGan: number; gL1: number; d: number }; grads: Float32Array[][] }
  /** A Download's file, or why there is none. */
  | { type: 'download'; name: string; blob?: Blob; error?: string };

/** What the page tells the worker: start a run, or pause (after the step in flight, saved) and resume it. */
/** A file the user dropped or chose, with its path inside what was dropped ('mydata/A/x.png'). */
export interface DroppedFile {
  path: string;
  file: File;
}

export type PageMessage =
  /** `files`: the user's own files, when `settings.dataset` names them (DROPPED_PREFIX). */
  | { type: 'start'; settings: TrainSettings; files?: DroppedFile[] }
  | { type: 'pause' }
  | { type: 'resume' }
  /** (a) the generator as a tfjs model, (b) the run folder for `pix2pix train --resume`; zips. */
  | { type: 'download'; what: 'model' | 'run' }
  /** Destroys the GPU device as a driver reset would: for tests of the lost-device message. */
  | { type: 'lose-device' };

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

/** `settings.dataset` of dropped files: this prefix and a fingerprint of their paths, sizes and times. */
export const DROPPED_PREFIX = 'dropped:';

/** What makes a saved state this setup's: the settings that define the run (not its length or backend). */
export function savedKey(s: TrainSettings): string {
  const dropped = s.dataset.startsWith(DROPPED_PREFIX) ? [s.kind, s.degrade] : [];
  // ndf came later: at its default the key is what it was, so states saved before still resume.
  const ndf = s.ndf === 64 ? [] : [`ndf ${s.ndf}`];
  return JSON.stringify([
    s.dataset,
    s.size,
    s.ngf,
    s.depth,
    s.batch,
    s.seed,
    s.lr,
    s.preset,
    s.finetune,
    ...dropped,
    ...ndf,
  ]);
}
