/// The repository's tables, one migration per version, the same on SQLite and PostgreSQL
/// (`SQLDialect` tokens stand for the few type names that differ). A migration is never
/// edited once released: a change is a new migration.
enum Schema {
    static let migrations: [Migration] = [
        Migration(identifier: "1: users, links, index, tasks", statements: """
            CREATE TABLE users (name {text} PRIMARY KEY NOT NULL, modified {int} NOT NULL);
            CREATE TABLE user_attributes ("user" {text} NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                name {text} NOT NULL, position {int} NOT NULL, value {text} NOT NULL, multi {int} NOT NULL,
                PRIMARY KEY ("user", name, position));
            CREATE INDEX user_attributes_by_value ON user_attributes(name, value);
            CREATE TABLE assignments ("user" {text} NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                resource {text} NOT NULL, PRIMARY KEY ("user", resource));
            CREATE INDEX assignments_by_resource ON assignments(resource);
            CREATE TABLE links ("user" {text} NOT NULL REFERENCES users(name) ON DELETE CASCADE,
                resource {text} NOT NULL, account_id {text} NOT NULL, PRIMARY KEY ("user", resource, account_id));
            CREATE INDEX links_by_account ON links(resource, account_id);
            CREATE INDEX links_by_account_id ON links(account_id);
            CREATE TABLE account_index (resource {text} NOT NULL, account_id {text} NOT NULL, owner {text},
                situation {text} NOT NULL, attributes {text} NOT NULL, digest {text} NOT NULL, last_seen {int},
                last_reconciled {int} NOT NULL, explanation {text}, PRIMARY KEY (resource, account_id));
            CREATE INDEX account_index_by_owner ON account_index(owner);
            CREATE TABLE index_history (resource {text} NOT NULL, account_id {text} NOT NULL, at {int} NOT NULL,
                task {int}, situation {text} NOT NULL, owner {text}, action {text}{seqcolumn});
            CREATE INDEX index_history_by_account ON index_history(resource, account_id);
            CREATE TABLE tasks (id {serial}, name {text} NOT NULL, resource {text} NOT NULL,
                mode {text} NOT NULL, server {text} NOT NULL, pid {int} NOT NULL, started {int} NOT NULL,
                finished {int}, status {text} NOT NULL, cancelled {int} NOT NULL DEFAULT 0,
                cancel_requested {int} NOT NULL DEFAULT 0, situations {text} NOT NULL DEFAULT '{}',
                responses {text} NOT NULL DEFAULT '{}', details {text});
            CREATE INDEX tasks_by_resource ON tasks(resource, status);
            CREATE TABLE task_errors (task {int} NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
                account_id {text}, message {text} NOT NULL{seqcolumn});
            CREATE TABLE resource_status (resource {text} PRIMARY KEY NOT NULL, status {text} NOT NULL, task {int});
            """),
        Migration(identifier: "2: work items", statements: """
            CREATE TABLE work_items (seq {serial}, resource {text} NOT NULL, account_id {text} NOT NULL,
                kind {text} NOT NULL, suggested_user {text}, approver {text}, changes {text} NOT NULL, status {text} NOT NULL,
                message {text}, created {int} NOT NULL, decided {int});
            CREATE INDEX work_items_by_status ON work_items(status);
            """),
        // A running task is its resource's lease: at most one per resource and name, alive while
        // its server's heartbeat is fresh. A bucketed run's buckets are taken by any server.
        Migration(identifier: "3: servers, one running task per resource, run buckets", statements: """
            CREATE TABLE servers (name {text} PRIMARY KEY NOT NULL, host {text} NOT NULL, pid {int} NOT NULL,
                started {int} NOT NULL, heartbeat {int} NOT NULL, stopped {int});
            CREATE UNIQUE INDEX tasks_one_running ON tasks(resource, name) WHERE status = 'running';
            ALTER TABLE tasks ADD COLUMN slot {int};
            CREATE TABLE run_buckets (task {int} NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, bucket {int} NOT NULL,
                state {text} NOT NULL, server {text}, taken {int}, result {text}, PRIMARY KEY (task, bucket));
            """),
        // A full run marks every index row of its resource reconciled (and seen, unless DELETED
        // or MISSING) at its start time. Rewriting each row took seconds at a million rows (and
        // left a dead row version of each on PostgreSQL): the run now records one sweep, and
        // rows are read through a view that applies the resource's latest sweep.
        Migration(identifier: "4: index sweeps", statements: """
            CREATE TABLE index_sweeps (resource {text} PRIMARY KEY NOT NULL, at {int} NOT NULL);
            CREATE VIEW account_index_swept AS SELECT i.resource, i.account_id, i.owner, i.situation, i.attributes, i.digest,
                CASE WHEN w.at IS NULL OR i.situation IN ('DELETED', 'MISSING') OR i.last_seen >= w.at THEN i.last_seen ELSE w.at END AS last_seen,
                CASE WHEN w.at IS NULL OR i.last_reconciled >= w.at THEN i.last_reconciled ELSE w.at END AS last_reconciled,
                i.explanation
                FROM account_index i LEFT JOIN index_sweeps w ON w.resource = i.resource;
            """),
        // What a resource's correlation situations rest on (`CorrelationBasis`), null when
        // nothing is known; every change counts a version. The index on users' change times
        // answers "has any user changed since" with one seek.
        Migration(identifier: "5: correlation bases", statements: """
            CREATE TABLE correlation_bases (resource {text} PRIMARY KEY NOT NULL, fingerprint {text}, since {int}, version {int} NOT NULL);
            CREATE INDEX users_by_modified ON users(modified);
            """),
    ]
}
