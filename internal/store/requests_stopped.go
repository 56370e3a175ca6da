package store

// migrationStoppedLive recreates the one-live-request-per-offer index with
// the stopped state (ReqStopped) among the live ones.
const migrationStoppedLive = `DROP INDEX IF EXISTS approval_requests_live_offer;
	CREATE UNIQUE INDEX approval_requests_live_offer ON approval_requests (offer_id)
		WHERE offer_id <> '' AND state IN ('planning', 'pending', 'approved', 'running', 'interrupted', 'stopped');`
