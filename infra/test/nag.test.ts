import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';
import { buildStack } from './helpers';

/**
 * cdk-nag 3 is a CDK policy-validation plugin: it no longer writes Annotations, so the v2 test
 * idiom `Annotations.fromStack(stack).findError('*', /AwsSolutions-.*\/)` finds nothing either
 * way. Its own test entry point, `validateScope`, returns the unacknowledged findings.
 */

/** Every acknowledged-rule metadata entry in the tree: [construct path, rule id, reason]. */
function acknowledgements(root: IConstruct): [string, string, unknown][] {
  const out: [string, string, unknown][] = [];
  for (const c of root.node.findAll()) {
    for (const entry of c.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, unknown>)) out.push([c.node.path, id, reason]);
    }
  }
  return out;
}

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged finding, error or warning', () => {
    const { stack } = buildStack();
    const result = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
    const summary = result.violations.map(
      (v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    assert.deepEqual(summary, []);
    assert.equal(result.success, true);
  });

  it('has no errors in a stack with another secret prefix and log level either', () => {
    const { stack } = buildStack({ tenantSecretPrefix: 'acme/clinics/', rustLog: 'debug' });
    const errors = new AwsSolutionsChecks().validateScope(stack).violations.filter((v) => v.severity === 'error');
    assert.deepEqual(errors, []);
  });

  it('every acknowledgement names an AwsSolutions rule and carries a real reason', () => {
    const { stack } = buildStack();
    const acks = acknowledgements(stack);
    assert.ok(acks.length > 0);
    for (const [path, id, reason] of acks) {
      assert.match(id, /AwsSolutions-[A-Z]+\d+/, `${path}: ${id}`);
      assert.equal(typeof reason, 'string', `${path}: ${id}`);
      assert.ok((reason as string).trim().length >= 40, `${path}: ${id} needs a reason, got '${String(reason)}'`);
    }
    // the stack's list (used for the README) and the recorded metadata agree
    assert.equal(acks.length, stack.nagAcknowledgements.length);
  });

  it('every acknowledgement suppresses a finding that would otherwise be reported (none is stale)', () => {
    const { stack } = buildStack();
    const checks = new AwsSolutionsChecks();
    // Spy on the pack's acknowledgement lookup to learn which acknowledgements were needed.
    const used = new Set<string>();
    const spied = checks as unknown as { isAcknowledged(node: IConstruct, ruleId: string): boolean };
    const original = spied.isAcknowledged.bind(checks);
    spied.isAcknowledged = (node, ruleId) => {
      const hit = original(node, ruleId);
      if (hit) {
        for (let c: IConstruct | undefined = node; c; c = c.node.scope) used.add(`${c.node.path}|${ruleId}`);
      }
      return hit;
    };
    assert.equal(checks.validateScope(stack).success, true);
    const stale = stack.nagAcknowledgements
      .map((a) => `${a.scope.node.path}|${a.id}`)
      .filter((key) => !used.has(key));
    assert.deepEqual(stale, []);
  });

  it('the accepted findings are only these rules', () => {
    const { stack } = buildStack();
    const rules = new Set(stack.nagAcknowledgements.map((a) => a.id.replace(/\[.*$/, '')));
    assert.deepEqual([...rules].sort(), ['AwsSolutions-IAM5', 'AwsSolutions-SMG4']);
  });

  it('an app with the plugin registered (as bin/app.ts does) synthesises', () => {
    const { app } = buildStack();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.doesNotThrow(() => app.synth());
  });

  it('the same app fails to synthesise when a finding is not acknowledged (the plugin really gates synth)', async () => {
    const { app, stack } = buildStack();
    const { Queue } = await import('aws-cdk-lib/aws-sqs');
    new Queue(stack, 'NoDlqNoTls'); // AwsSolutions-SQS3 and SQS4 findings
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    assert.throws(() => app.synth(), /Validation failed/);
  });
});
