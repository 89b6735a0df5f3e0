// What the rest of the code may know of backends without loading one: the names a user may choose,
// and the hook through which the active backend reports errors late. No backend module is imported
// here, so code the browser bundles (the training step, the config) stays free of Node-only ones.

export const BACKENDS = ['auto', 'native', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

let lateErrors: (() => void) | undefined;

/** Set by the backend that reports errors after the call that caused them (webgpu). */
export function setLateErrorCheck(check: (() => void) | undefined): void {
  lateErrors = check;
}

/**
 * Throws the active backend's late-reported error, if any: WebGPU reports an out-of-memory or a lost
 * device after the call that caused it, so a training step checks here after its read, before it
 * updates a weight. Other backends fail in the call itself.
 */
export function throwBackendError(): void {
  lateErrors?.();
}
