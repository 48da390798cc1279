//! Making an administrator in a test: `users.admin` set straight in the test server's database
//! (SQLite file or PostgreSQL database), as `hubbub admin promote` would.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

use super::TestApp;

impl TestApp {
    /// Makes `username` a server administrator. The server reads the flag on every admin
    /// request, so it takes effect at once.
    pub fn make_admin_in_db(&self, username: &str) {
        let sql = "UPDATE users SET admin = TRUE WHERE username = $1";
        let changed = match self.database_url() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let mut conn = PgConnection::establish(&url).expect("connect to the test database");
                diesel::sql_query(sql)
                    .bind::<diesel::sql_types::Text, _>(username)
                    .execute(&mut conn)
                    .expect("UPDATE users")
            }
            url => {
                let path = url
                    .map(|u| u.strip_prefix("sqlite://").unwrap_or(&u).to_owned())
                    .unwrap_or_else(|| self.data_dir.join("hubbub.db").to_string_lossy().into());
                let mut conn = SqliteConnection::establish(&path).expect("open the test database");
                // The server holds the file too: wait for its write lock rather than fail.
                conn.batch_execute("PRAGMA busy_timeout = 10000")
                    .expect("busy_timeout");
                diesel::sql_query(sql.replace("$1", "?"))
                    .bind::<diesel::sql_types::Text, _>(username)
                    .execute(&mut conn)
                    .expect("UPDATE users")
            }
        };
        assert_eq!(changed, 1, "no user {username} to make an admin");
    }

    /// The database URL the server was given, if not the default SQLite file of its data dir.
    fn database_url(&self) -> Option<String> {
        self.envs
            .iter()
            .rev()
            .find(|(k, _)| k == "HUBBUB_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .or_else(|| self.db.as_ref().map(|db| db.url.clone()))
    }
}
