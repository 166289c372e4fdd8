import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { FUNCTION_NAMES } from '../lib/constants';
import { assetPath } from '../lib/rust-function';
import { DEFAULT_LAMBDA_ASSETS_DIR, REPO_ROOT, SyncStack } from '../lib/sync-stack';
import { cdkJsonContext } from './helpers';
import { tempAssetsDir, zipOneFile } from './placeholder-assets';

/** Reads the single entry of a stored zip, checking the structure the zip reader will check. */
function readStoredZip(buf: Buffer): { name: string; content: Buffer; mode: number } {
  const eocd = buf.length - 22;
  assert.equal(buf.readUInt32LE(eocd), 0x06054b50, 'end of central directory');
  assert.equal(buf.readUInt16LE(eocd + 10), 1, 'one entry');
  const cd = buf.readUInt32LE(eocd + 16);
  assert.equal(buf.readUInt32LE(cd), 0x02014b50, 'central directory header');
  const nameLen = buf.readUInt16LE(cd + 28);
  const mode = buf.readUInt32LE(cd + 38) >>> 16;
  const local = buf.readUInt32LE(cd + 42);
  assert.equal(buf.readUInt32LE(local), 0x04034b50, 'local header');
  const size = buf.readUInt32LE(local + 18);
  const name = buf.subarray(local + 30, local + 30 + nameLen).toString('utf8');
  const content = buf.subarray(local + 30 + nameLen, local + 30 + nameLen + size);
  return { name, content, mode };
}

describe('Lambda assets', () => {
  it('placeholders are real zips holding an executable bootstrap, one per function', () => {
    const dir = tempAssetsDir();
    for (const name of FUNCTION_NAMES) {
      const zip = readStoredZip(fs.readFileSync(assetPath(dir, name)));
      assert.equal(zip.name, 'bootstrap');
      assert.match(zip.content.toString(), new RegExp(name));
      assert.equal(zip.mode & 0o777, 0o755);
    }
  });

  it('the zip writer round-trips content', () => {
    const zip = readStoredZip(zipOneFile('bootstrap', Buffer.from('hello')));
    assert.equal(zip.content.toString(), 'hello');
  });

  it("defaults to cargo lambda's target/lambda at the repository root", () => {
    assert.equal(DEFAULT_LAMBDA_ASSETS_DIR, path.join('target', 'lambda'));
    assert.ok(fs.existsSync(path.join(REPO_ROOT, 'infra', 'cdk.json')), `repo root ${REPO_ROOT}`);
  });

  it('a missing bootstrap.zip is a clear error naming the function and the build command', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'infra-empty-'));
    const app = new App({ context: cdkJsonContext() });
    assert.throws(
      () => new SyncStack(app, 'Missing', { lambdaAssetsDir: empty }),
      /Lambda asset for 'poller' not found at .*poller\/bootstrap\.zip.*cargo lambda build --release --arm64 --output-format zip/,
    );
    fs.rmSync(empty, { recursive: true, force: true });
  });
});
