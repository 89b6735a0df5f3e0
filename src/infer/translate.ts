// Translates image files and folders with a trained generator (see tiling.ts for how any size is run).
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { decodeRgb, type RgbImage } from '../data/image.js';
import '../models/instance-norm.js';
import { writeFileAtomic } from '../util/fs.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { type EpochChoice, type LoadedGenerator, loadGenerator } from './load.js';
import {
  type FlexibleGenerator,
  flexibleGenerator,
  sideBySide,
  type TranslateImageOptions,
  tileSettings,
  translateImage,
} from './tiling.js';

export * from './tiling.js';

/** Formats written; `--format` offers the first three, the others keep a tif or gif input's format. */
export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'tiff' | 'gif';
export const OUTPUT_FORMATS = ['png', 'jpeg', 'webp'] as const;

const FORMAT_OF_EXT: Record<string, ImageFormat> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.gif': 'gif',
};
const EXT_OF_FORMAT: Record<ImageFormat, string> = {
  png: '.png',
  jpeg: '.jpg',
  webp: '.webp',
  tiff: '.tif',
  gif: '.gif',
};

/** The image format a file name's extension stands for, if any. */
export const formatOfPath = (p: string): ImageFormat | undefined => FORMAT_OF_EXT[extname(p).toLowerCase()];

/** Encodes an image (JPEG and WebP at quality 95, GIF with its 256-colour palette). */
export function encodeImage(img: RgbImage, format: ImageFormat): Promise<Buffer> {
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  switch (format) {
    case 'png':
      return s.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
    case 'jpeg':
      return s.jpeg({ quality: 95 }).toBuffer();
    case 'webp':
      return s.webp({ quality: 95 }).toBuffer();
    case 'tiff':
      return s.tiff({ compression: 'lzw' }).toBuffer();
    case 'gif':
      return s.gif().toBuffer();
  }
}

/** One image to translate and where its result goes. */
export interface TranslateJob {
  input: string;
  output: string;
  format: ImageFormat;
}

const statOrUndefined = (p: string) => stat(p).catch(() => undefined);

/**
 * The images to translate and their output paths, checked before any model is loaded: a folder gives
 * every image in it (png, jpg/jpeg, webp, tif/tiff, gif) into the output folder under the same base
 * name; a file gives one, into `output` (a file, or an existing folder). The format is `format`, else
 * the output file's extension (for one file), else the input's. Refuses to overwrite an input.
 */
export async function planTranslation(
  input: string,
  output: string,
  format?: ImageFormat,
): Promise<{ jobs: TranslateJob[]; folder: boolean; ignored: string[] }> {
  const st = await statOrUndefined(input);
  if (!st) throw new UserError(`input ${input} does not exist`);
  const outSt = await statOrUndefined(output);
  let jobs: TranslateJob[];
  const ignored: string[] = [];
  let folder = false;
  if (st.isDirectory()) {
    folder = true;
    if (outSt && !outSt.isDirectory()) {
      throw new UserError(`--output ${output} is a file: a folder input needs an output folder`);
    }
    const names = (await readdir(input, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    jobs = [];
    for (const d of names) {
      const inFormat = formatOfPath(d.name);
      if (!d.isFile() || !inFormat) {
        if (d.isFile()) ignored.push(d.name);
        continue;
      }
      const f = format ?? inFormat;
      const ext = f === inFormat ? extname(d.name) : EXT_OF_FORMAT[f];
      jobs.push({
        input: join(input, d.name),
        output: join(output, basename(d.name, extname(d.name)) + ext),
        format: f,
      });
    }
    if (jobs.length === 0) {
      throw new UserError(`${input} holds no images (png, jpg, jpeg, webp, tif, tiff, gif)`);
    }
    const seen = new Map<string, string>();
    for (const j of jobs) {
      const other = seen.get(j.output);
      if (other) {
        throw new UserError(`${other} and ${j.input} would both be written to ${j.output}: pass --format`);
      }
      seen.set(j.output, j.input);
    }
  } else {
    const inFormat = formatOfPath(input);
    if (!inFormat) {
      throw new UserError(`${input} is not an image this reads (png, jpg, jpeg, webp, tif, tiff, gif)`);
    }
    if (outSt?.isDirectory()) {
      const f = format ?? inFormat;
      const ext = f === inFormat ? extname(input) : EXT_OF_FORMAT[f];
      jobs = [{ input, output: join(output, basename(input, extname(input)) + ext), format: f }];
    } else {
      const outFormat = formatOfPath(output);
      if (!outFormat) {
        throw new UserError(
          `--output ${output} needs an image extension (.png, .jpg, .webp, .tif, .gif) or must be an existing folder`,
        );
      }
      if (format && format !== outFormat) {
        throw new UserError(`--format ${format} contradicts the extension of --output ${output}`);
      }
      jobs = [{ input, output, format: outFormat }];
    }
  }
  for (const j of jobs) {
    if (resolve(j.output) === resolve(j.input)) {
      throw new UserError(`refusing to overwrite the input ${j.input}: choose another --output`);
    }
  }
  return { jobs, folder, ignored };
}

/** Where a translation stands, for a progress bar. */
export interface TranslateProgress {
  /** Images finished (translated or skipped). */
  done: number;
  total: number;
  /** The image being translated, or the one just finished. */
  file: string;
  /** Tiles of the image being translated: done and in all (both 0 before it starts and once it is done). */
  tile: number;
  tiles: number;
}

export interface TranslateOptions extends Omit<TranslateImageOptions, 'onTile'> {
  /** A run folder, a checkpoint folder or a `pix2pix export` folder. */
  model: string;
  /** Which of a run's checkpoints (default latest). */
  epoch?: EpochChoice;
  /** An image file or a folder of images. */
  input: string;
  /** An image file (or an existing folder) for one input; a folder (created) for a folder input. */
  output: string;
  /** Output format; default the input's (for one file, the output's extension). */
  format?: ImageFormat;
  /** Write input | output side by side instead of the output alone. */
  compare?: boolean;
  log?: Logger;
  onProgress?: (p: TranslateProgress) => void;
  /** Called once the model is loaded, before any image. */
  onModel?: (m: LoadedGenerator & { multiple: number; tile: number; overlap: number }) => void;
}

export interface TranslateResult {
  checkpoint: string;
  epoch: number;
  step: number;
  /** The run's direction: the model's input is the dataset's A side for AtoB, B for BtoA. */
  direction?: string;
  size: number;
  multiple: number;
  tile: number;
  overlap: number;
  outputs: { input: string; output: string; width: number; height: number; tiles: number; seconds: number }[];
  failed: { input: string; error: string }[];
}

/**
 * Translates an image or a folder of images with a trained generator (dropout off), each at its own
 * size (see the top of this file). Unreadable images are reported through `log` and in `failed`, and
 * skipped; everything else that goes wrong throws.
 */
export async function translate(opts: TranslateOptions): Promise<TranslateResult> {
  const log = opts.log ?? silentLogger;
  const { jobs, folder } = await planTranslation(opts.input, opts.output, opts.format);
  const loaded = await loadGenerator(opts.model, opts.epoch);
  let gen: FlexibleGenerator;
  try {
    gen = await flexibleGenerator(loaded.G);
  } finally {
    loaded.G.dispose();
  }
  try {
    const { tile, overlap } = tileSettings(gen, opts);
    opts.onModel?.({ ...loaded, multiple: gen.multiple, tile, overlap });
    if (folder) await mkdir(opts.output, { recursive: true });
    const result: TranslateResult = {
      checkpoint: loaded.checkpoint,
      epoch: loaded.meta.epoch,
      step: loaded.meta.step,
      direction: loaded.direction,
      size: gen.size,
      multiple: gen.multiple,
      tile,
      overlap,
      outputs: [],
      failed: [],
    };
    for (const [i, job] of jobs.entries()) {
      const progress = (tileDone: number, tiles: number, done = i) =>
        opts.onProgress?.({ done, total: jobs.length, file: job.input, tile: tileDone, tiles });
      progress(0, 0);
      let img: RgbImage;
      try {
        img = await decodeRgb(job.input);
      } catch (e) {
        const error = (e as Error).message.split('\n')[0]!;
        log.warn(`skipped ${job.input}: not a readable image (${error})`);
        result.failed.push({ input: job.input, error });
        progress(0, 0, i + 1);
        continue;
      }
      const t0 = performance.now();
      let tiles = 0;
      const out = await translateImage(gen, img, {
        tile,
        overlap,
        onTile: (d, n) => {
          tiles = n;
          progress(d, n);
        },
      });
      const bytes = await encodeImage(opts.compare ? sideBySide(img, out) : out, job.format);
      try {
        await mkdir(dirname(job.output), { recursive: true });
        await writeFileAtomic(job.output, bytes);
      } catch (e) {
        throw new UserError(`cannot write ${job.output}: ${(e as Error).message.split('\n')[0]}`);
      }
      const seconds = (performance.now() - t0) / 1000;
      result.outputs.push({
        input: job.input,
        output: job.output,
        width: img.width,
        height: img.height,
        tiles,
        seconds,
      });
      log.info(
        `${job.input} (${img.width}x${img.height}, ${tiles} tile${tiles === 1 ? '' : 's'}, ${seconds.toFixed(1)} s) -> ${job.output}`,
      );
      progress(0, 0, i + 1);
    }
    return result;
  } finally {
    gen.model.dispose();
  }
}
