-- Presence (docs/operations.md, "Presence"): which node holds a stream of which user, each
-- node's liveness, and each user's announced state and setting.

-- A node's heartbeat; a node silent longer than HUBBUB_PRESENCE_NODE_TIMEOUT_MS is swept.
CREATE TABLE presence_nodes (
    node_id UUID PRIMARY KEY NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX presence_nodes_heartbeat ON presence_nodes(heartbeat_at);

-- The user holds a stream on the node (or did, less than the grace period ago).
CREATE TABLE presence_streams (
    node_id UUID NOT NULL,
    user_id UUID NOT NULL,
    PRIMARY KEY (node_id, user_id)
);
CREATE INDEX presence_streams_user ON presence_streams(user_id);

-- Per user: the setting, the state last announced (changed only by a compare-and-set in the
-- transaction that appends its presence.updated), and a change held back by the flap window.
CREATE TABLE presence_states (
    user_id UUID PRIMARY KEY NOT NULL,
    share BOOLEAN NOT NULL DEFAULT TRUE,
    online BOOLEAN NOT NULL DEFAULT FALSE,
    last_seen_at TIMESTAMPTZ,
    left_at TIMESTAMPTZ,
    announced_at TIMESTAMPTZ,
    due_at TIMESTAMPTZ
);
CREATE INDEX presence_states_due ON presence_states(due_at) WHERE due_at IS NOT NULL;
