import neostandard from 'neostandard'

// The two halves of the kit never import each other (types excepted, for the options bootCluster
// passes on to the plugin): a primary must not load the worker's code, nor a worker the primary's.
// Only the entry files at lib/'s root see both.
const sides = (other) => ({
  rules: {
    'no-restricted-imports': ['error', { patterns: [{ group: [`**/${other}/**`, `../${other}/*`], allowTypeImports: true, message: `lib/${other}/ is the other side: share through lib/common/ or lib/shared-state/` }] }]
  }
})

export default [
  ...neostandard({ ts: true, ignores: ['**/dist', 'coverage', '.tap', '.ci/nodes', 'examples/attendance-dashboard/data', 'examples/attendance-dashboard/logs'] }),
  { files: ['lib/worker/**'], ...sides('primary') },
  { files: ['lib/primary/**'], ...sides('worker') },
  { files: ['lib/common/**', 'lib/shared-state/**'], rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['**/primary/**', '**/worker/**', '../primary/*', '../worker/*'], allowTypeImports: true, message: 'lib/common/ and lib/shared-state/ serve both sides and import neither' }] }] } }
]
