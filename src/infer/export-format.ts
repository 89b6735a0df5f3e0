// What a folder written by `pix2pix export` says about its model, as far as loading it needs: here,
// below export, because infer/load.ts reads such folders (translate --model EXPORT_DIR) and export
// (src/export/metadata.ts, whose ExportMetadata extends ExportedModelInfo) writes them. No Node import.

export const EXPORT_FORMAT = 'pix2pix-ts-export';
export const EXPORT_METADATA_FILE = 'metadata.json';

/** The fields of an export's metadata.json that loading reads. */
export interface ExportedModelInfo {
  format: typeof EXPORT_FORMAT;
  formatVersion: 1;
  /** AtoB or BtoA: which image of a dataset pair the model takes; null where no run config was found. */
  direction: string | null;
  checkpoint: {
    path: string;
    run: string | null;
    epoch: number;
    step: number;
    time: string;
    /** Batches of the epoch done, for a mid-epoch checkpoint. */
    batchInEpoch?: number;
  };
  /** This epoch's row of the run's eval.csv (test split, uint8 RGB), when it was evaluated. */
  scores: { psnr: number | null; ssim: number; mae: number; step: number; evalSeconds: number } | null;
}
