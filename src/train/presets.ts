// The presets of `pix2pix train --preset`, apart from config.ts so the pages can list them without
// bundling the models (this module imports types only).
import type { TrainConfig } from './config.js';

/**
 * Named sets of option values (`--preset NAME`): they replace the reference's defaults, and options
 * typed on the command line still win. The values used are what config.json records.
 *
 * `denoise` (measured on the Debian-wallpaper gaussian:25 dataset, 128 px crops, 2 cores; bench/QUALITY.md):
 * a residual generator whose correction is added to a Gaussian blur (sigma 3 px) of the input. The
 * UNet's finest level is half the image's side, so a plain residual G must rebuild every pixel's
 * noise to subtract it, and a direct one every pixel's colour: after 5 minutes both sat near 29-30 dB
 * with errors that were almost all low-frequency colour offsets (direct, 7-16 levels a channel) or
 * left-over grain (plain residual, SSIM 0.5-0.6); on the blur, G corrects a smooth image and scored
 * 35.5 dB / SSIM 0.885 after one epoch (the blur alone: 34.9 dB). Without dropout, narrower and
 * shallower (ngf 32, 5 levels), on fresh 128 px crops whose noise is re-drawn every epoch, without
 * the resize jitter (resampling would smooth the noise the test images keep). lr 1e-3: the L1 loss
 * after 150 steps was 0.083 against 0.121 at 2e-4. The first 42 of 45 epochs train on L1 alone: a
 * step without D takes a third of the time, and the adversarial game, started early, kept grain in
 * the output and made PSNR oscillate (31.3, 30.6, 32.4 dB at 20, 39, 48 minutes); the last 3 epochs,
 * at a learning rate decayed to 12-4 % of its start, are the full conditional GAN + lambda 1000 L1
 * (the adversarial term at a tenth of the reference's weight). 20 epochs then 25 of linear decay: 67.5
 * minutes of training on a 2-core machine (1.2-1.5 minutes an L1 epoch, 3.2-3.6 a GAN epoch), which
 * scored 39.1 dB / SSIM 0.933 against NL-means' 36.1 / 0.894 on the 704 test tiles.
 * `--full-res` (a level at the image's own side): on photos unlike the training ones (bench/QUALITY.md's
 * independent set, sigma 25) it scored 28.44 dB / SSIM 0.800 after 6 L1 epochs against 27.81 / 0.786
 * without, and 36.48 against 35.33 dB on the split, for ~1.4x the step time; a sigma 1 blur instead of
 * 3 did no better (28.35 / 0.801, 35.07 on the split), and training on sigma 5-50 (--train-degrade
 * gaussian:5-50) helped at sigma 15 and 50 but cost SSIM at 25 (0.788), so it stays an option: a
 * preset must not replace the noise of a dataset it is given.
 * `--scale-jitter 0.5` (each clean tile shrunk to 50-100 % of its side before the noise is drawn): the
 * wallpapers' 256 px tiles are cut from 2-5 megapixel photos and mostly smooth, a user's photo at its
 * own size is not. After 6 L1 epochs it scored 28.91 dB / SSIM 0.810 on the independent set at sigma
 * 25 against 28.44 / 0.800 without (sigma 15: 29.39 against 28.85; sigma 50, a noise it never sees:
 * 25.82 against 25.92), and 37.04 against 36.48 dB on the split, at the same step time.
 * The whole preset, as `npm run bench:quality` trains it (65.6 minutes: L1 epochs 1.2-1.3 minutes, GAN
 * epochs 2.2-2.7): 40.41 dB / SSIM 0.940 on the split (NL-means 36.06 / 0.894) and 30.14 / 0.838 on
 * the independent photos at sigma 25 (NL-means 28.35 / 0.750); the 3 GAN epochs change no score by
 * more than 0.07 dB or 0.004 SSIM.
 * It evaluates every 9 epochs (9, 18, 27, 36 and the last, 45), so the dashboard draws its PSNR and
 * SSIM curve without --eval-every: one evaluation of the 704 tiles at 256 px takes ~70 s (~0.1 s an
 * image on this CPU), 5 of them ~6 minutes of the preset's 90-minute budget; every epoch would cost
 * 53 minutes, and the test split is what a user compares runs on, so fewer points would show little.
 */
export const PRESETS = {
  denoise: {
    crop: 128,
    batchSize: 8,
    residual: true,
    residualBlur: 3,
    fullRes: true,
    scaleJitter: 0.5,
    dropout: false,
    ngf: 32,
    depth: 5,
    degradeOnTheFly: true,
    augment: false,
    lr: 1e-3,
    lambdaL1: 1000,
    l1Warmup: 42,
    epochs: 20,
    epochsDecay: 25,
    evalEvery: 9,
  },
} as const satisfies Record<string, Partial<TrainConfig>>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
