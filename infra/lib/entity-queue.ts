import { Duration } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Receives before a message moves to the DLQ. */
export const MAX_RECEIVE_COUNT = 5;
/** How long a failed message waits in the DLQ for a person (or a replay). */
export const DLQ_RETENTION = Duration.days(14);
/** Visibility timeout = this many times the consumer's timeout (AWS guidance for Lambda). */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

export interface EntityQueueProps {
  /** `patients`, `products` or `invoices`. */
  readonly entity: string;
  readonly encryptionKey: kms.IKey;
  /** Timeout of the consuming function; the visibility timeout is derived from it. */
  readonly consumerTimeout: Duration;
}

/**
 * A work queue for one entity type with its dead-letter queue. Both are KMS-encrypted and
 * refuse non-TLS requests.
 */
export class EntityQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: EntityQueueProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      enforceSSL: true,
      retentionPeriod: DLQ_RETENTION,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      // One data key serves many messages for 5 minutes: fewer KMS calls, same protection.
      dataKeyReuse: Duration.minutes(5),
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.consumerTimeout.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      // SQS keeps a message's original enqueue time when it moves to the DLQ, so the DLQ's
      // retention (14 days) must exceed this one (4 days, SQS's default, stated here).
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });
  }
}
