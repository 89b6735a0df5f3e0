// The degradations in Node: degrade-core.ts with sharp as the JPEG codec. The browser calls
// degrade-core.ts's parseDegradationWith with its canvas codec (canvas.ts) instead.
import { type Degradation, parseDegradationWith } from './degrade-core.js';
import { sharpCodec } from './image.js';

export {
  applyDegradation,
  type Degradation,
  resolveDegradation,
  TASK_DEGRADATIONS,
} from './degrade-core.js';

/** parseDegradationWith (degrade-core.ts) with sharp doing the JPEG steps. */
export function parseDegradation(spec: string): Degradation[] {
  return parseDegradationWith(spec, sharpCodec);
}
