import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';

export interface FunctionScheduleProps {
  /** The one function this schedule invokes. */
  readonly target: lambda.IFunction;
  /** EventBridge Scheduler expression: `rate(...)`, `cron(...)` or `at(...)`. */
  readonly scheduleExpression: string;
  /** IANA time zone the cron expression is read in; UTC when absent. */
  readonly timeZone?: string;
  readonly description: string;
  /** Retries when the invocation fails to be delivered (not when the function fails). */
  readonly maximumRetryAttempts: number;
  /** Drop an invocation that could not be delivered within this many seconds. */
  readonly maximumEventAgeSeconds: number;
}

/**
 * An EventBridge Scheduler schedule invoking one Lambda function, with a role that may invoke
 * exactly that function and nothing else. (The L1 `CfnSchedule` is used so the role's policy
 * names the function's ARN alone, without the `:*` version/alias wildcard the L2 target adds.)
 */
export class FunctionSchedule extends Construct {
  readonly schedule: scheduler.CfnSchedule;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: FunctionScheduleProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'Role', {
      // Confused-deputy guard: only schedules of this account may assume the role.
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: `EventBridge Scheduler: invoke ${props.description}`,
      inlinePolicies: {
        InvokeTarget: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['lambda:InvokeFunction'],
              resources: [props.target.functionArn],
            }),
          ],
        }),
      },
    });

    this.schedule = new scheduler.CfnSchedule(this, 'Schedule', {
      description: props.description,
      scheduleExpression: props.scheduleExpression,
      scheduleExpressionTimezone: props.timeZone,
      flexibleTimeWindow: { mode: 'OFF' },
      state: 'ENABLED',
      target: {
        arn: props.target.functionArn,
        roleArn: this.role.roleArn,
        input: '{}',
        retryPolicy: {
          maximumRetryAttempts: props.maximumRetryAttempts,
          maximumEventAgeInSeconds: props.maximumEventAgeSeconds,
        },
      },
    });
  }
}

