import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { FUNCTION_MEMORY_MB, FUNCTION_TIMEOUT_SECONDS, FunctionName } from './constants';

export interface RustFunctionProps {
  /** Crate name under `functions/`; also the directory under `lambdaAssetsDir`. */
  readonly name: FunctionName;
  /** Absolute directory holding `<name>/bootstrap.zip` from `cargo lambda build --output-format zip`. */
  readonly assetsDir: string;
  readonly environment: Record<string, string>;
}

/** Path of a function's zip inside the assets directory (cargo lambda's layout). */
export function assetPath(assetsDir: string, name: string): string {
  return path.join(assetsDir, name, 'bootstrap.zip');
}

/**
 * One Rust Lambda function (ARM64, provided.al2023) from a prebuilt `bootstrap.zip`, with its
 * own log group (90 days) and its own role that can write only to that log group. Callers add
 * every other permission next to where the function is created.
 */
export class RustFunction extends Construct {
  readonly function: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    const zip = assetPath(props.assetsDir, props.name);
    if (!fs.existsSync(zip)) {
      throw new Error(
        `Lambda asset for '${props.name}' not found at ${zip}. Build the functions with ` +
          '`cargo lambda build --release --arm64 --output-format zip` at the repository root, ' +
          'or point the context value lambdaAssetsDir at a directory holding <name>/bootstrap.zip.',
      );
    }

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: logs.RetentionDays.THREE_MONTHS, // LOG_RETENTION_DAYS
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // An explicit role instead of the AWSLambdaBasicExecutionRole managed policy: logs go to
    // this function's log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the ${props.name} function`,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new lambda.Function(this, 'Function', {
      description: `Cliniko -> Reckon sync: ${props.name}`,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      architecture: lambda.Architecture.ARM_64,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(zip),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.TEXT,
      timeout: Duration.seconds(FUNCTION_TIMEOUT_SECONDS[props.name]),
      memorySize: FUNCTION_MEMORY_MB[props.name],
      environment: props.environment,
    });
  }
}
