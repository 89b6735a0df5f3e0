export { InstanceNorm } from './instance-norm.js';
export { loadModel, saveModel } from './io.js';
export { NORMS, type NormKind } from './layers.js';
export { DISCRIMINATORS, type DiscriminatorKind, patchDiscriminator } from './patchgan.js';
export { ResidualOutput } from './residual.js';
export { resolveUnetDepth, unetDepth, unetGenerator } from './unet.js';
