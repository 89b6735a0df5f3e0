import { existsSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import protobuf from 'protobufjs';
import { blurRadius, gaussianTaps } from '../models/residual.js';
import { UserError } from '../util/log.js';
import { packageRoot } from '../util/package-root.js';

/**
 * ONNX operator set of the exported graph. 17 is the newest that the vendored onnx.proto's release
 * (ONNX 1.12, IR version 8) defines; every op used here has had its present form since opset 13-15.
 */
export const ONNX_OPSET = 17;
/** IR version 8: ONNX 1.12's, the IR_VERSION of third_party/onnx/onnx.proto. */
export const ONNX_IR_VERSION = 8;

/** Layer classes the ONNX export understands (Dropout and linear activations become nothing). */
export const ONNX_LAYER_CLASSES = [
  'InputLayer',
  'Conv2D',
  'Conv2DTranspose',
  'InstanceNorm',
  'BatchNormalization',
  'LeakyReLU',
  'ReLU',
  'Activation',
  'Dropout',
  'Concatenate',
  'ResidualOutput',
] as const;

/** ONNX's schema, shipped in the package root's third_party/onnx. */
function protoPath(): string {
  const p = join(packageRoot(), 'third_party', 'onnx', 'onnx.proto');
  if (!existsSync(p)) throw new Error('third_party/onnx/onnx.proto is missing from the pix2pix-ts package');
  return p;
}

let root: protobuf.Root | undefined;
/** ONNX's own schema, parsed at run time by protobufjs (no generated code). */
export function onnxSchema(): protobuf.Root {
  root ??= protobuf.loadSync(protoPath());
  return root;
}

// TensorProto.DataType.FLOAT and the AttributeProto.AttributeType values used here.
const FLOAT = 1;
const INT64 = 7;
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

type Attr =
  | { name: string; type: typeof ATTR.FLOAT; f: number }
  | { name: string; type: typeof ATTR.INT; i: number }
  | { name: string; type: typeof ATTR.STRING; s: Uint8Array }
  | { name: string; type: typeof ATTR.INTS; ints: number[] };

const fAttr = (name: string, f: number): Attr => ({ name, type: ATTR.FLOAT, f });
const iAttr = (name: string, i: number): Attr => ({ name, type: ATTR.INT, i });
const intsAttr = (name: string, ints: number[]): Attr => ({ name, type: ATTR.INTS, ints });
const sAttr = (name: string, text: string): Attr => ({
  name,
  type: ATTR.STRING,
  s: new TextEncoder().encode(text),
});

interface NodeSpec {
  opType: string;
  name: string;
  input: string[];
  output: string[];
  attribute?: Attr[];
}

interface TensorSpec {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

/** Transposes a dense row-major tensor: output dim i is input dim perm[i]. */
export function permute(
  values: Float32Array,
  shape: number[],
  perm: number[],
): { values: Float32Array; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    inStrides[d] = s;
    s *= shape[d]!;
  }
  const strides = perm.map((p) => inStrides[p]!); // input stride of each output dim
  const out = new Float32Array(values.length);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = values[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      src += strides[d]!;
      if (idx[d]! < outShape[d]!) break;
      src -= strides[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
  return { values: out, shape: outShape };
}

/** tfjs conv kernels are [kh, kw, a, b]; ONNX wants [b, a, kh, kw] for both Conv (O,I) and ConvTranspose (I,O). */
export const KERNEL_TO_ONNX = [3, 2, 0, 1];

/**
 * Explicit pads [begin, end] of one spatial dim of a tfjs convolution with padding 'same' or 'valid',
 * by TensorFlow's rule: the total is what makes out = ceil(in / stride), and the odd pixel goes at the
 * end. Conv2D: in -> out. A transposed conv is the adjoint of the conv from its output to its input, so
 * its ONNX pads are that conv's pads (out = in * stride for 'same').
 */
export function samePads(inSize: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const out = Math.ceil(inSize / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - inSize, 0);
  const begin = Math.floor(total / 2);
  return [begin, total - begin];
}

const ACTIVATIONS: Record<string, string | null> = {
  linear: null,
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
  relu: 'Relu',
};

interface LayerConfig {
  name: string;
  className: string;
  config: Record<string, unknown>;
  inboundNodes: [string, number, number, unknown][][];
}

class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  private readonly constants = new Map<string, string>();

  node(opType: string, name: string, input: string[], attribute: Attr[] = [], output = `${name}:0`): string {
    this.nodes.push({ opType, name, input, output: [output], attribute });
    return output;
  }

  tensor(name: string, dims: number[], values: Float32Array): string {
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    this.initializers.push({ name, dims, dataType: FLOAT, rawData: Uint8Array.from(bytes) });
    return name;
  }

  /** An int64 initializer (shapes and pads that ops take as inputs). */
  int64(name: string, values: number[]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    const rawData = new Uint8Array(data.buffer.slice(0));
    this.initializers.push({ name, dims: [values.length], dataType: INT64, rawData });
    return name;
  }

  /** A constant vector of `count` copies of `value`, shared by every layer that needs it. */
  fill(value: number, count: number): string {
    const key = `const/${value === 1 ? 'ones' : value === 0 ? 'zeros' : value}_${count}`;
    if (!this.constants.has(key))
      this.constants.set(key, this.tensor(key, [count], new Float32Array(count).fill(value)));
    return this.constants.get(key)!;
  }
}

/** Every weight's values, read once and asynchronously (no backend needs a synchronous read). */
type WeightValues = Map<tfl.LayerVariable, Float32Array>;

async function readWeights(model: tfl.LayersModel): Promise<WeightValues> {
  const values: WeightValues = new Map();
  for (const w of model.weights) values.set(w, (await w.read().data()) as Float32Array);
  return values;
}

/** The layer's weights by their short name (kernel, bias, gamma, moving_mean...), as float32 arrays. */
function weightsOf(
  layer: tfl.layers.Layer,
  values: WeightValues,
): Map<string, { values: Float32Array; shape: number[] }> {
  const out = new Map<string, { values: Float32Array; shape: number[] }>();
  for (const w of layer.weights) {
    const short = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
    out.set(short, { values: values.get(w)!, shape: w.shape.map((d) => d as number) });
  }
  return out;
}

/** NHWC axis (negative allowed) -> the same axis of the NCHW tensor the graph carries. */
function nchwAxis(axis: number): number {
  const a = axis < 0 ? axis + 4 : axis;
  const map = [0, 2, 3, 1];
  if (!(a >= 0 && a < 4)) throw new Error(`axis ${axis} is not an axis of a 4-D tensor`);
  return map[a]!;
}

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [v[0] as number, (v[1] ?? v[0]) as number] : [v as number, v as number];

/** Static NHWC shape of a layer's input or output (batch left null). */
function shapeOf(t: tfl.SymbolicTensor | tfl.SymbolicTensor[]): (number | null)[] {
  return (Array.isArray(t) ? t[0]! : t).shape;
}

export interface OnnxExportOptions {
  /** Stored as the model's doc string and `metadata_props` (string values). */
  docString?: string;
  metadata?: Record<string, string>;
  producerVersion?: string;
  graphName?: string;
}

export interface OnnxExport {
  bytes: Uint8Array;
  opset: number;
  irVersion: number;
  inputName: string;
  outputName: string;
  /** NHWC with a dynamic batch ('N'). */
  inputShape: (number | string)[];
  outputShape: (number | string)[];
  /** ONNX op types used, in the order first met. */
  ops: string[];
}

/**
 * Converts a single-input, single-output tfjs LayersModel of 2-D convolutions (the pix2pix UNet
 * generator and kin) to an ONNX model: NHWC float32 in and out ('input' [N,H,W,C] -> 'output'
 * [N,H',W',C'], N dynamic) so it drops in where the tfjs model was, with a Transpose to NCHW after
 * the input and back before the output. Convolutions get explicit pads computed from tfjs's
 * 'same'/'valid' rule (never auto_pad or output_shape); LeakyRelu carries its alpha; instance norm
 * gets explicit scale and bias and the layer's epsilon; Dropout is the identity at inference.
 * A layer of another class is a one-line error naming it.
 */
export async function layersModelToOnnx(
  model: tfl.LayersModel,
  opts: OnnxExportOptions = {},
): Promise<OnnxExport> {
  if (endianness() !== 'LE') throw new Error('the ONNX export writes little-endian raw tensor data');
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new UserError(
      `ONNX export takes a model with one input and one output (${model.name} has ${model.inputs.length} and ${model.outputs.length})`,
    );
  }
  const config = model.getConfig() as unknown as { layers: LayerConfig[] };
  const values = await readWeights(model);
  const g = new GraphBuilder();
  /** NCHW tensor name of each layer's output. */
  const tensorOf = new Map<string, string>();
  const ops: string[] = [];
  const emit = (opType: string, name: string, input: string[], attribute: Attr[] = []) => {
    if (!ops.includes(opType)) ops.push(opType);
    return g.node(opType, name, input, attribute);
  };
  const inputShape = shapeOf(model.inputs[0]!);
  if (inputShape.length !== 4 || inputShape.slice(1).some((d) => typeof d !== 'number')) {
    throw new UserError(`ONNX export needs a fixed [N, H, W, C] input (got ${JSON.stringify(inputShape)})`);
  }
  const inputName = 'input';
  const outputName = 'output';

  for (const lc of config.layers) {
    const layer = model.getLayer(lc.name);
    const cls = layer.getClassName();
    const cfg = lc.config;
    const name = lc.name;
    const inbound = lc.inboundNodes;
    if (cls !== 'InputLayer' && inbound.length !== 1) {
      throw new UserError(
        `cannot export layer '${name}' (${cls}) to ONNX: it is applied ${inbound.length} times`,
      );
    }
    const inputs = cls === 'InputLayer' ? [] : inbound[0]!.map(([src]) => tensorOf.get(src)!);
    const x = inputs[0]!;
    const channelsLast = () => {
      if ((cfg.dataFormat ?? 'channelsLast') !== 'channelsLast') {
        throw new UserError(`cannot export layer '${name}' (${cls}) to ONNX: dataFormat ${cfg.dataFormat}`);
      }
    };
    const activation = (y: string) => {
      const act = (cfg.activation as string | undefined) ?? 'linear';
      if (!(act in ACTIVATIONS)) {
        throw new UserError(`cannot export layer '${name}' (${cls}) to ONNX: activation '${act}'`);
      }
      const op = ACTIVATIONS[act];
      return op ? emit(op, `${name}/${act}`, [y]) : y;
    };
    switch (cls) {
      case 'InputLayer':
        tensorOf.set(
          name,
          emit('Transpose', `${name}/to_nchw`, [inputName], [intsAttr('perm', [0, 3, 1, 2])]),
        );
        break;
      case 'Conv2D':
      case 'Conv2DTranspose': {
        channelsLast();
        const transposed = cls === 'Conv2DTranspose';
        const [kh, kw] = pair(cfg.kernelSize);
        const [sh, sw] = pair(cfg.strides);
        const [dh, dw] = transposed ? [1, 1] : pair(cfg.dilationRate ?? 1);
        const padding = cfg.padding as string;
        if (padding !== 'same' && padding !== 'valid') {
          throw new UserError(`cannot export layer '${name}' (${cls}) to ONNX: padding '${padding}'`);
        }
        const inShape = shapeOf(layer.input) as number[];
        const outShape = shapeOf(layer.output) as number[];
        // A transposed conv's pads are those of the conv from its output back to its input.
        const [ph, pw] =
          padding === 'valid'
            ? [
                [0, 0],
                [0, 0],
              ]
            : transposed
              ? [samePads(outShape[1]!, kh, sh), samePads(outShape[2]!, kw, sw)]
              : [samePads(inShape[1]!, kh, sh, dh), samePads(inShape[2]!, kw, sw, dw)];
        const onnxOut = [1, 2].map((d, j) => {
          const [p0, p1] = j === 0 ? ph! : pw!;
          const [k, s, dil] = j === 0 ? [kh, sh, dh] : [kw, sw, dw];
          return transposed
            ? s * (inShape[d]! - 1) + k - p0! - p1!
            : Math.floor((inShape[d]! + p0! + p1! - (dil * (k - 1) + 1)) / s) + 1;
        });
        if (onnxOut[0] !== outShape[1] || onnxOut[1] !== outShape[2]) {
          throw new UserError(
            `cannot export layer '${name}' (${cls}) to ONNX: its ${padding} output ${outShape.slice(1, 3)} has no explicit-pad equivalent (got ${onnxOut})`,
          );
        }
        const w = weightsOf(layer, values);
        const kernel = w.get('kernel');
        if (!kernel) throw new Error(`layer '${name}' has no kernel weight`);
        const k = permute(kernel.values, kernel.shape, KERNEL_TO_ONNX);
        const ins = [x, g.tensor(`${name}/kernel`, k.shape, k.values)];
        const bias = w.get('bias');
        if (cfg.useBias && bias) ins.push(g.tensor(`${name}/bias`, bias.shape, bias.values));
        const attrs = [
          intsAttr('kernel_shape', [kh, kw]),
          intsAttr('strides', [sh, sw]),
          intsAttr('pads', [ph![0]!, pw![0]!, ph![1]!, pw![1]!]),
          intsAttr('dilations', [dh, dw]),
          iAttr('group', 1),
        ];
        tensorOf.set(name, activation(emit(transposed ? 'ConvTranspose' : 'Conv', name, ins, attrs)));
        break;
      }
      case 'InstanceNorm': {
        const channels = shapeOf(layer.input).at(-1) as number;
        const w = weightsOf(layer, values);
        const gamma = w.get('gamma');
        const beta = w.get('beta');
        const scale = gamma ? g.tensor(`${name}/gamma`, gamma.shape, gamma.values) : g.fill(1, channels);
        const b = beta ? g.tensor(`${name}/beta`, beta.shape, beta.values) : g.fill(0, channels);
        const eps = (cfg.epsilon as number | undefined) ?? 1e-5;
        tensorOf.set(name, emit('InstanceNormalization', name, [x, scale, b], [fAttr('epsilon', eps)]));
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== 3) {
          throw new UserError(`cannot export layer '${name}' (${cls}) to ONNX: axis ${axis} is not channels`);
        }
        const channels = shapeOf(layer.input).at(-1) as number;
        const w = weightsOf(layer, values);
        const t = (key: string, fallback: number) => {
          const v = w.get(key);
          return v ? g.tensor(`${name}/${key}`, v.shape, v.values) : g.fill(fallback, channels);
        };
        const ins = [x, t('gamma', 1), t('beta', 0), t('moving_mean', 0), t('moving_variance', 1)];
        const eps = (cfg.epsilon as number | undefined) ?? 1e-3;
        tensorOf.set(name, emit('BatchNormalization', name, ins, [fAttr('epsilon', eps)]));
        break;
      }
      case 'LeakyReLU':
        // ONNX's default alpha is 0.01, tfjs's 0.3: always explicit.
        tensorOf.set(name, emit('LeakyRelu', name, [x], [fAttr('alpha', (cfg.alpha as number) ?? 0.3)]));
        break;
      case 'ReLU':
        if (cfg.maxValue != null) {
          throw new UserError(`cannot export layer '${name}' (${cls}) to ONNX: maxValue ${cfg.maxValue}`);
        }
        tensorOf.set(name, emit('Relu', name, [x]));
        break;
      case 'Activation':
        tensorOf.set(name, activation(x));
        break;
      case 'Dropout':
        tensorOf.set(name, x);
        break;
      case 'Concatenate':
        tensorOf.set(
          name,
          emit('Concat', name, inputs, [iAttr('axis', nchwAxis((cfg.axis as number) ?? -1))]),
        );
        break;
      case 'ResidualOutput': {
        // y = clip(x + r, min, max) (src/models/residual.ts); Clip takes its bounds as scalar inputs
        // since opset 11.
        const lo = g.tensor(`${name}/min`, [], new Float32Array([(cfg.min as number | undefined) ?? -1]));
        const hi = g.tensor(`${name}/max`, [], new Float32Array([(cfg.max as number | undefined) ?? 1]));
        let base = inputs[0]!;
        const sigma = (cfg.blur as number | undefined) ?? 0;
        if (sigma > 0) {
          // blur(x) as in gaussianBlur: reflect pad by the radius, then the 1-D Gaussian along W and
          // along H, each a depthwise Conv (group = channels, weights [C, 1, kh, kw]).
          const r = blurRadius(sigma);
          const taps = gaussianTaps(sigma);
          const channels = shapeOf(layer.input).at(-1) as number;
          const weights = new Float32Array(channels * taps.length);
          for (let c = 0; c < channels; c++) weights.set(taps, c * taps.length);
          const pads = g.int64(`${name}/blur_pads`, [0, 0, r, r, 0, 0, r, r]);
          const padded = emit('Pad', `${name}/blur_pad`, [base, pads], [sAttr('mode', 'reflect')]);
          const pass = (axis: 'w' | 'h', x: string) =>
            emit(
              'Conv',
              `${name}/blur_${axis}`,
              [
                x,
                g.tensor(
                  `${name}/blur_${axis}/kernel`,
                  axis === 'w' ? [channels, 1, 1, taps.length] : [channels, 1, taps.length, 1],
                  weights,
                ),
              ],
              [
                intsAttr('kernel_shape', axis === 'w' ? [1, taps.length] : [taps.length, 1]),
                iAttr('group', channels),
              ],
            );
          base = pass('h', pass('w', padded));
        }
        const sum = emit('Add', `${name}/add`, [base, inputs[1]!]);
        tensorOf.set(name, emit('Clip', name, [sum, lo, hi]));
        break;
      }
      default:
        throw new UserError(
          `cannot export layer '${name}' of class ${cls} to ONNX: supported are ${ONNX_LAYER_CLASSES.join(', ')}`,
        );
    }
  }

  const outLayer = model.outputLayers[0]!.name;
  const last = tensorOf.get(outLayer)!;
  g.node('Transpose', `${outLayer}/to_nhwc`, [last], [intsAttr('perm', [0, 2, 3, 1])], outputName);
  if (!ops.includes('Transpose')) ops.push('Transpose');
  const outShape = shapeOf(model.outputs[0]!);
  const dims = (shape: (number | null)[]) => shape.map((d, i) => (i === 0 || d == null ? 'N' : d));
  const valueInfo = (name: string, shape: (number | string)[]) => ({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
  const inDims = dims(inputShape);
  const outDims = dims(outShape);
  const schema = onnxSchema();
  const ModelProto = schema.lookupType('onnx.ModelProto');
  const message = ModelProto.fromObject({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'pix2pix-ts',
    producerVersion: opts.producerVersion ?? '',
    docString: opts.docString ?? '',
    graph: {
      name: opts.graphName ?? model.name,
      node: g.nodes,
      initializer: g.initializers,
      input: [valueInfo(inputName, inDims)],
      output: [valueInfo(outputName, outDims)],
    },
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  const err = ModelProto.verify(message);
  if (err) throw new Error(`ONNX model does not match onnx.proto: ${err}`);
  return {
    bytes: ModelProto.encode(message).finish(),
    opset: ONNX_OPSET,
    irVersion: ONNX_IR_VERSION,
    inputName,
    outputName,
    inputShape: inDims,
    outputShape: outDims,
    ops,
  };
}

/** Parses ONNX bytes back into a plain object (camelCase field names), for inspection and tests. */
export function decodeOnnx(bytes: Uint8Array): Record<string, unknown> {
  const ModelProto = onnxSchema().lookupType('onnx.ModelProto');
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, enums: String }) as Record<
    string,
    unknown
  >;
}
