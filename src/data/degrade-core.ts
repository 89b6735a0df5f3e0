// The degradations with no Node import, so the browser's train page makes its pairs with this very code;
// degrade.ts is the Node face (JPEG through sharp).
import { UserError } from '../util/log.js';
import { canny } from './canny.js';
import { blurPlanes } from './filters.js';
import { luma, newImage, type PixelCodec, type RgbImage } from './rgb.js';
import type { Rng } from './rng.js';

/**
 * Degradations that turn a clean target B into the network's input A. All work on 8-bit values in
 * [0, 255] and end clipped and rounded, so A is exactly what a PNG stores and the loader reads back.
 */
export interface Degradation {
  /** Canonical spec, e.g. `gaussian:25`. */
  readonly spec: string;
  /**
   * Each output pixel depends on its input pixel alone (noise, gray), so degrading a crop gives what
   * cropping the degraded image would, in distribution: `--degrade-on-the-fly` then draws only the crop.
   */
  readonly pixelwise?: true;
  apply(img: RgbImage, rng: Rng): RgbImage | Promise<RgbImage>;
}

/** Default degradation of each `--task`. */
export const TASK_DEGRADATIONS: Record<string, string> = {
  denoise: 'gaussian:25',
  colorize: 'gray',
  edges: 'edges',
  deblur: 'blur:2',
  dejpeg: 'jpeg:20',
  'denoise-poisson': 'poisson:30',
  'denoise-saltpepper': 'saltpepper:0.05',
};

const clip = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

function mapPixels(img: RgbImage, f: (v: number) => number): RgbImage {
  const out = newImage(img.width, img.height);
  const s = img.data;
  const d = out.data;
  for (let i = 0; i < s.length; i++) d[i] = clip(f(s[i]!));
  return out;
}

/**
 * Gaussian noise of sigma `lo`, or (lo < hi) of a sigma drawn per image uniformly from [lo, hi]: one
 * model trained on a range serves every noise level in it. A fixed sigma draws no extra number, so its
 * noise is what it always was.
 */
function gaussianNoise(lo: number, hi = lo): Degradation {
  return {
    spec: lo === hi ? `gaussian:${lo}` : `gaussian:${lo}-${hi}`,
    pixelwise: true,
    apply: (img, rng) => {
      const sigma = lo === hi ? lo : lo + (hi - lo) * rng.next();
      return mapPixels(img, (v) => v + sigma * rng.normal());
    },
  };
}

/** Shot noise: each channel value becomes a photon count with mean value/255*peak, rescaled back. */
function poissonNoise(peak: number): Degradation {
  return {
    spec: `poisson:${peak}`,
    pixelwise: true,
    apply: (img, rng) => mapPixels(img, (v) => (rng.poisson((v / 255) * peak) / peak) * 255),
  };
}

/** Impulse noise: a fraction p of pixels (all three channels together) become black or white. */
function saltPepper(p: number): Degradation {
  return {
    spec: `saltpepper:${p}`,
    pixelwise: true,
    apply: (img, rng) => {
      const out = newImage(img.width, img.height);
      out.data.set(img.data);
      const n = img.width * img.height;
      for (let i = 0; i < n; i++) {
        if (rng.next() < p) out.data.fill(rng.next() < 0.5 ? 0 : 255, 3 * i, 3 * i + 3);
      }
      return out;
    },
  };
}

/** JPEG needs an encoder, which the platform gives: sharp in Node, the canvas in a browser. */
function jpeg(quality: number, codec: Pick<PixelCodec, 'jpeg'>): Degradation {
  return { spec: `jpeg:${quality}`, apply: (img) => codec.jpeg(img, quality) };
}

function blur(sigma: number): Degradation {
  return {
    spec: `blur:${sigma}`,
    apply: (img) => {
      const f = blurPlanes(Float32Array.from(img.data), img.width, img.height, 3, sigma);
      const out = newImage(img.width, img.height);
      for (let i = 0; i < f.length; i++) out.data[i] = clip(f[i]!);
      return out;
    },
  };
}

/** Luma copied to all three channels, so A keeps the 3-channel shape the networks expect. */
const gray: Degradation = {
  spec: 'gray',
  pixelwise: true,
  apply: (img) => {
    const y = luma(img);
    const out = newImage(img.width, img.height);
    for (let i = 0; i < y.length; i++) out.data.fill(clip(y[i]!), 3 * i, 3 * i + 3);
    return out;
  },
};

/** Canny edges drawn black on white, the look of the edges2shoes/edges2handbags inputs. */
function edges(sigma: number, low: number, high: number): Degradation {
  return {
    spec: `edges:${sigma},${low},${high}`,
    apply: (img) => {
      const e = canny(luma(img), img.width, img.height, { sigma, low, high });
      const out = newImage(img.width, img.height);
      for (let i = 0; i < e.length; i++) out.data.fill(e[i] ? 0 : 255, 3 * i, 3 * i + 3);
      return out;
    },
  };
}

function numbers(step: string, args: string, count: [number, number]): number[] {
  const xs = args === '' ? [] : args.split(',').map((s) => Number(s.trim()));
  if (xs.length < count[0] || xs.length > count[1] || xs.some((x) => !Number.isFinite(x))) {
    const want = count[0] === count[1] ? `${count[0]}` : `${count[0]} to ${count[1]}`;
    throw new UserError(
      `degradation '${step}' needs ${want} numeric argument(s), e.g. ${EXAMPLES[step.split(':')[0]!]}`,
    );
  }
  return xs;
}

const EXAMPLES: Record<string, string> = {
  gaussian: 'gaussian:25 (or a range, gaussian:5-50)',
  poisson: 'poisson:30',
  saltpepper: 'saltpepper:0.05',
  jpeg: 'jpeg:20',
  blur: 'blur:2',
  gray: 'gray',
  edges: 'edges or edges:1.4,40,100',
};

function check(ok: boolean, step: string, what: string): void {
  if (!ok) throw new UserError(`degradation '${step}': ${what}`);
}

/**
 * Parses `gaussian:25+jpeg:40`-style specs: steps joined by `+`, applied left to right, each
 * `name[:arg[,arg...]]`, with `codec` doing the JPEG steps. Throws UserError naming the bad step.
 * Node code calls degrade.ts's parseDegradation, which passes sharp.
 */
export function parseDegradationWith(spec: string, codec: Pick<PixelCodec, 'jpeg'>): Degradation[] {
  const steps = spec.split('+').map((s) => s.trim());
  if (spec.trim() === '' || steps.some((s) => s === '')) {
    throw new UserError(`empty degradation in '${spec}': use e.g. gaussian:25 or blur:1+jpeg:30`);
  }
  return steps.map((step) => {
    const colon = step.indexOf(':');
    const name = colon < 0 ? step : step.slice(0, colon);
    const args = colon < 0 ? '' : step.slice(colon + 1);
    switch (name) {
      case 'gaussian': {
        const range = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(args.trim());
        if (range) {
          const [lo, hi] = [Number(range[1]), Number(range[2])];
          check(lo < hi, step, 'a sigma range LOW-HIGH needs LOW < HIGH');
          return gaussianNoise(lo, hi);
        }
        const [s] = numbers(step, args, [1, 1]) as [number];
        check(s >= 0, step, 'sigma must be >= 0');
        return gaussianNoise(s);
      }
      case 'poisson': {
        const [p] = numbers(step, args, [1, 1]) as [number];
        check(p > 0, step, 'peak must be > 0');
        return poissonNoise(p);
      }
      case 'saltpepper': {
        const [p] = numbers(step, args, [1, 1]) as [number];
        check(p >= 0 && p <= 1, step, 'probability must be in [0, 1]');
        return saltPepper(p);
      }
      case 'jpeg': {
        const [q] = numbers(step, args, [1, 1]) as [number];
        check(Number.isInteger(q) && q >= 1 && q <= 100, step, 'quality must be an integer in 1..100');
        return jpeg(q, codec);
      }
      case 'blur': {
        const [s] = numbers(step, args, [1, 1]) as [number];
        check(s > 0 && s <= 50, step, 'sigma must be in (0, 50]');
        return blur(s);
      }
      case 'gray':
        numbers(step, args, [0, 0]);
        return gray;
      case 'edges': {
        const [sigma = 1.4, low = 40, high = 100] = numbers(step, args, [0, 3]);
        check(sigma > 0 && low >= 0 && high >= low, step, 'need sigma > 0 and 0 <= low <= high');
        return edges(sigma, low, high);
      }
      default:
        throw new UserError(
          `unknown degradation '${name}': use ${Object.keys(EXAMPLES).join(', ')}, joined with + (e.g. blur:1+gaussian:10)`,
        );
    }
  });
}

export async function applyDegradation(steps: Degradation[], img: RgbImage, rng: Rng): Promise<RgbImage> {
  let out = img;
  for (const s of steps) out = await s.apply(out, rng);
  return out;
}

/** The degradation a task implies, or the explicit one; explicit wins. */
export function resolveDegradation(
  task: string | undefined,
  degrade: string | undefined,
): string | undefined {
  if (degrade) return degrade;
  if (task === undefined) return undefined;
  const d = TASK_DEGRADATIONS[task];
  if (!d) throw new UserError(`unknown task '${task}': use ${Object.keys(TASK_DEGRADATIONS).join(', ')}`);
  return d;
}
