import type { EpochEvent, StepEvent } from '../train/loop.js';
import { fmtDuration, fmtNum, fmtSig } from '../util/format.js';

/** NaN is a loss that was not computed (the GAN terms during the L1 warm-up). */
const loss = (x: number) => (Number.isNaN(x) ? '-' : fmtSig(x, 4));

/**
 * Renders training progress on stderr: a bar redrawn in place on a terminal; on a pipe or log file,
 * one line per step (steps take a second or more, so that stays readable).
 */
export class ProgressReporter {
  private readonly started = performance.now();
  private stepsDone = 0;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  step(e: StepEvent): void {
    this.stepsDone++;
    const width = 24;
    const filled = Math.round((e.step / e.stepsPerEpoch) * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const elapsed = (performance.now() - this.started) / 1000;
    const remaining = (e.totalEpochs - e.epoch + 1) * e.stepsPerEpoch - e.step;
    const eta = (elapsed / this.stepsDone) * remaining;
    const line =
      `epoch ${e.epoch}/${e.totalEpochs} ${bar} ${e.step}/${e.stepsPerEpoch}` +
      ` G_gan ${loss(e.losses.gGan)} G_L1 ${loss(e.losses.gL1)} D ${loss(e.losses.d)}` +
      ` ${e.imagesPerSec.toFixed(2)} img/s ETA ${fmtDuration(eta)}`;
    if (this.stream.isTTY) this.stream.write(`\r${line.slice(0, (this.stream.columns || 160) - 1)}\x1b[K`);
    else this.stream.write(`${line}\n`);
  }

  epoch(e: EpochEvent): void {
    if (this.stream.isTTY) this.stream.write('\n');
    this.stream.write(
      `epoch ${e.epoch} done in ${fmtDuration(e.seconds)}: mean G_gan ${loss(e.losses.gGan)} G_L1 ${loss(e.losses.gL1)} D ${loss(e.losses.d)}` +
        `; per batch: step ${e.msPerBatch.step.toFixed(0)} ms, decoding ${e.msPerBatch.decode.toFixed(0)} ms (overlapped), waiting for data ${e.msPerBatch.wait.toFixed(0)} ms` +
        `; checkpoint ${e.checkpoint}, sample ${e.sample}\n`,
    );
    if (e.scores) {
      const s = e.scores;
      this.stream.write(
        `epoch ${e.epoch} test split: PSNR ${fmtNum(s.psnr, 2)} dB, SSIM ${fmtNum(s.ssim, 4)}, MAE ${fmtNum(s.mae, 2)} (evaluated in ${fmtDuration(s.seconds)}, not counted above)\n`,
      );
    }
  }
}
