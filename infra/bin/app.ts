#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SyncStack } from '../lib/sync-stack';

const app = new App();

/** Context values: `-c lambdaAssetsDir=DIR -c tenantSecretPrefix=PREFIX -c rustLog=FILTER -c stackName=NAME`. */
function context(name: string): string | undefined {
  const v: unknown = app.node.tryGetContext(name);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

new SyncStack(app, context('stackName') ?? 'ClinikoReckonSync', {
  description: 'Cliniko -> Reckon One sync (serverless)',
  lambdaAssetsDir: context('lambdaAssetsDir'),
  tenantSecretPrefix: context('tenantSecretPrefix'),
  rustLog: context('rustLog'),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});

// The AWS Solutions rules (cdk-nag 3, a CDK policy validation plugin) run on every synth and
// stop it on any finding; the findings we accept are acknowledged, each with its reason, in
// lib/nag-suppressions.ts.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
