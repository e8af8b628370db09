// vitest globalSetup: every test file's temporary folders (mkdtemp under os.tmpdir()) go into one folder of this
// run, removed when the run ends, so that a test run leaves nothing behind in /tmp. The forked workers inherit
// TMPDIR from this process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const root = mkdtempSync(join(tmpdir(), 'churn-tests-'));
  process.env.TMPDIR = root;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(root, { recursive: true, force: true });
  };
}
