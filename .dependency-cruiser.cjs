// The layers of src/, lowest first (../shared/DESIGN.md §1; issue 21): a module may import its own
// layer and those below it, never one above. `npm test` runs this (scripts/test.mjs), so an upward
// import fails CI with the rule's name, e.g. "train-may-not-import-a-higher-layer: src/train/x.ts → src/eval/y.ts".
const LAYERS = ['util', 'backend', 'data', 'models', 'run', 'train', 'eval', 'experiment', 'infer', 'export', 'web', 'cli'];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `${layer}-may-not-import-a-higher-layer`,
  comment: `src/${layer} sits below ${LAYERS.slice(i + 1).join(', ')}: data flows one way, so the lower layer cannot import them`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'no-circular-layers',
      comment: 'a cycle between modules of different folders hides an upward import',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { circular: true, path: '^src/([^/]+)/', pathNot: '^src/$1/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'], exportsFields: ['exports'], conditionNames: ['import', 'default'] },
  },
};
