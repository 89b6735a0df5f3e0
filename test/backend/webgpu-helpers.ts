import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

/** SwiftShader's Vulkan driver as Debian's chromium ships it: the software GPU the tests run on. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The environment that lets Dawn use the software adapter on purpose (the tests' GPU). */
export const softwareGpuEnv = { VK_ICD_FILENAMES: SWIFTSHADER_ICD, P2P_WEBGPU_SOFTWARE: '1' };

/** Sets softwareGpuEnv in this process (before the first setupBackend('webgpu')). */
export function useSoftwareGpu(): void {
  Object.assign(process.env, softwareGpuEnv);
}

function webgpuPackage(): boolean {
  try {
    createRequire(import.meta.url).resolve('webgpu');
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the WebGPU tests cannot run here, or false. scripts/setup.sh installs both, so in CI (CI set)
 * they always run and fail if either is missing; a machine set up by hand may lack them.
 */
export const webgpuSkip: string | false = process.env.CI
  ? false
  : !webgpuPackage()
    ? "the optional package 'webgpu' is not installed"
    : !existsSync(SWIFTSHADER_ICD)
      ? `no SwiftShader ICD at ${SWIFTSHADER_ICD} (apt-get install chromium)`
      : false;
