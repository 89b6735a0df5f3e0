export { type ExportMetadata, type ExportOptions, type ExportResult, exportModel } from './export.js';
export { layersModelToOnnx, ONNX_IR_VERSION, ONNX_OPSET, type OnnxExport } from './onnx.js';
export { QUANTIZE_CHOICES, type Quantize, writeLayersModel } from './tfjs.js';
