/** Placeholder until the oneDNN addon lands (issue 3): `auto` falls back to wasm. */
export async function registerNativeBackend(): Promise<void> {
  throw new Error('the native addon is not built yet');
}
