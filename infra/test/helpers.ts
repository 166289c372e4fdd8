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

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Resource {
  Type: string;
  Properties: Json;
  [k: string]: Json;
}

/** Logical id of the one resource of `type` whose properties satisfy `pred`. */
export function findOne(resources: Record<string, Resource>, type: string, pred: (p: Json) => boolean): string {
  const ids = Object.entries(resources)
    .filter(([, r]) => r.Type === type && pred(r.Properties ?? {}))
    .map(([id]) => id);
  if (ids.length !== 1) throw new Error(`expected one ${type}, found ${ids.length}: ${ids.join(', ')}`);
  return ids[0]!;
}

/** Logical id of the Lambda function built from `name` (its description names it). */
export function functionId(resources: Record<string, Resource>, name: string): string {
  return findOne(resources, 'AWS::Lambda::Function', (p) => p.Description === `Cliniko -> Reckon sync: ${name}`);
}

/** Every IAM statement attached (inline or through AWS::IAM::Policy) to the role `roleId`. */
export function roleStatements(resources: Record<string, Resource>, roleId: string): Json[] {
  const out: Json[] = [];
  const role = resources[roleId];
  if (!role) throw new Error(`no role ${roleId}`);
  for (const p of role.Properties.Policies ?? []) out.push(...p.PolicyDocument.Statement);
  for (const r of Object.values(resources)) {
    if (r.Type !== 'AWS::IAM::Policy') continue;
    if ((r.Properties.Roles ?? []).some((x: Json) => x.Ref === roleId)) out.push(...r.Properties.PolicyDocument.Statement);
  }
  return out;
}

const asArray = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** Statements flattened to `action -> resources` (resources as compact JSON strings). */
export function actionMap(statements: Json[]): Map<string, Set<string>> {
  const m = new Map<string, Set<string>>();
  for (const s of statements) {
    if (s.Effect !== 'Allow') throw new Error(`unexpected ${s.Effect} statement`);
    for (const a of asArray<string>(s.Action)) {
      const set = m.get(a) ?? new Set<string>();
      for (const r of asArray<Json>(s.Resource)) set.add(JSON.stringify(r));
      m.set(a, set);
    }
  }
  return m;
}

/** `{"Fn::GetAtt":[id,"Arn"]}` as actionMap stores it. */
export const getAttArn = (id: string) => JSON.stringify({ 'Fn::GetAtt': [id, 'Arn'] });
export const ref = (id: string) => JSON.stringify({ Ref: id });
