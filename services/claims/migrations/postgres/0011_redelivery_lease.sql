-- The redelivery task (batches left CREATED by a process that died between storing and sending
-- them) runs on every replica: a replica takes a batch's redelivery until this time (unix
-- micros), so two replicas never send one batch twice.
ALTER TABLE submission_batches ADD COLUMN redelivery_lease_until BIGINT;
