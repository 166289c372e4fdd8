import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { SyncStack, SyncStackProps } from '../lib/sync-stack';
import { tempAssetsDir } from './placeholder-assets';

/** The context of cdk.json (feature flags included), so tests synthesise what `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

/** A SyncStack built from placeholder assets in a fresh temporary directory. */
export function buildStack(props: SyncStackProps = {}): { app: App; stack: SyncStack; assetsDir: string } {
  const assetsDir = props.lambdaAssetsDir ?? tempAssetsDir();
  const app = new App({ context: cdkJsonContext() });
  const stack = new SyncStack(app, 'TestSync', {
    env: { account: '123456789012', region: 'ap-southeast-2' },
    ...props,
    lambdaAssetsDir: assetsDir,
  });
  return { app, stack, assetsDir };
}
