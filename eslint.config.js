import neostandard from 'neostandard'

export default neostandard({ ts: true, ignores: ['**/dist', 'coverage', '.tap', 'examples/attendance-dashboard/data', 'examples/attendance-dashboard/logs'] })
