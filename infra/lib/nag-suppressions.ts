import { CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { IConstruct } from 'constructs';

export interface NagTargets {
  readonly table: dynamodb.Table;
  readonly reportsBucket: s3.Bucket;
  readonly secrets: secretsmanager.Secret[];
  /** Constructs owning the roles of functions that read the table (through CDK grants). */
  readonly tableReaders: IConstruct[];
  /** Constructs owning roles granted the customer-managed key through CDK's SQS/DynamoDB/Secrets grants. */
  readonly keyGrantees: IConstruct[];
  /** Construct owning the reconciler's role. */
  readonly reportWriter: IConstruct;
  /** Name prefix of the tenants' secrets (`{prefix}{tenant}/cliniko`, `.../reckon-tokens`). */
  readonly tenantSecretPrefix: string;
  /** Constructs owning roles that read the tenants' Cliniko secrets. */
  readonly clinikoSecretReaders: IConstruct[];
  /** Constructs owning roles that read and rotate the tenants' Reckon token secrets. */
  readonly tokenSecretUsers: IConstruct[];
}

/** One acknowledged cdk-nag finding: where, which rule (with finding id), and why. */
export interface NagAcknowledgement {
  readonly scope: IConstruct;
  readonly id: string;
  readonly reason: string;
}

/**
 * The AwsSolutions findings this stack accepts, each with its reason. cdk-nag 3 uses CDK's
 * `Validations.of(scope).acknowledge`; findings with a finding id (IAM5) are acknowledged one
 * by one, never the whole rule.
 */
export function nagAcknowledgements(stack: Stack, t: NagTargets): NagAcknowledgement[] {
  const arn = (c: IConstruct) => `<${stack.getLogicalId(c.node.defaultChild as CfnElement)}.Arn>`;
  const acks: NagAcknowledgement[] = [];

  for (const secret of t.secrets) {
    acks.push({
      scope: secret,
      id: 'AwsSolutions-SMG4',
      reason:
        'Vendor credentials (Cliniko API key, Reckon client secret and subscription key) are issued by the vendors and ' +
        'cannot be rotated by a Lambda; the OAuth token pair is rotated by the functions themselves on every refresh.',
    });
  }

  for (const scope of t.tableReaders) {
    acks.push({
      scope,
      id: `AwsSolutions-IAM5[Resource::${arn(t.table)}/index/*]`,
      reason:
        "CDK's table grant covers the table's indexes; the table has exactly one (gsi1, reverse lookups), which the functions query.",
    });
  }

  for (const scope of t.keyGrantees) {
    for (const action of ['kms:GenerateDataKey*', 'kms:ReEncrypt*']) {
      acks.push({
        scope,
        id: `AwsSolutions-IAM5[Action::${action}]`,
        reason:
          `${action} comes from CDK's grants for the KMS-encrypted queues, table and secrets; it is limited to the one ` +
          'customer-managed key of this stack and only names variants of the same KMS operation.',
      });
    }
  }

  // As cdk-nag renders the tenants' secret ARNs (tokens become `<AWS::...>`).
  const part = (v: string, token: string) => (Token.isUnresolved(v) ? `<AWS::${token}>` : v);
  const secretArn = (name: string) =>
    `arn:<AWS::Partition>:secretsmanager:${part(stack.region, 'Region')}:${part(stack.account, 'AccountId')}:secret:` +
    `${t.tenantSecretPrefix}*/${name}-??????`;
  const perTenant =
    'One deployment serves every clinic of the tenant directory, and clinics are added without a deploy, so the ' +
    'functions read the secrets of any tenant: limited to this deployment\'s prefix and to the one secret name of ' +
    'that kind per tenant (the `-??????` is the suffix Secrets Manager appends to every secret ARN).';
  for (const scope of t.clinikoSecretReaders) {
    acks.push({ scope, id: `AwsSolutions-IAM5[Resource::${secretArn('cliniko')}]`, reason: perTenant });
  }
  for (const scope of t.tokenSecretUsers) {
    acks.push({
      scope,
      id: `AwsSolutions-IAM5[Resource::${secretArn('reckon-tokens')}]`,
      reason: `${perTenant} Refreshing a clinic's Reckon tokens rotates the refresh token, which must be written back.`,
    });
  }

  acks.push({
    scope: t.reportWriter,
    id: `AwsSolutions-IAM5[Resource::${arn(t.reportsBucket)}/reports/*]`,
    reason:
      'The reconciler writes a new object per report (dated keys under reports/<tenant>/), so it needs s3:PutObject on ' +
      'the report objects of the bucket; it has no read, list or delete permission.',
  });
  return acks;
}

/** Records every acknowledgement on its construct. */
export function addNagSuppressions(stack: Stack, targets: NagTargets): NagAcknowledgement[] {
  const acks = nagAcknowledgements(stack, targets);
  for (const a of acks) Validations.of(a.scope).acknowledge({ id: a.id, reason: a.reason });
  return acks;
}
