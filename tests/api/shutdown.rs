//! The daemon stops on SIGTERM even while an API client holds a request open.

use std::io::Write;

use super::{Api, OPERATOR};

#[test]
fn a_half_sent_request_does_not_keep_the_daemon_from_stopping() {
    let mut api = Api::start();
    // Headers promise a body that never comes.
    let mut conn = std::net::TcpStream::connect(&api.addr).unwrap();
    write!(
        conn,
        "POST /api/v1/groups/web/scale HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {OPERATOR}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .unwrap();
    // And an idle keep-alive connection.
    let _idle = std::net::TcpStream::connect(&api.addr).unwrap();
    assert_eq!(api.daemon.stop(), Some(0), "{}", api.daemon.log());
}
