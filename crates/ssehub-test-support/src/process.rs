//! A child process that announces where it listens and is killed with the test.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// The URL in a server's first line of output, `listening on http://ADDR` (the hub and the
/// load generator's bare server both say it so).
pub fn listening_url(line: &str) -> String {
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the first line of the server: {line:?}"))
        .to_owned()
}

/// A server process started by a plain (not async) test, killed (SIGKILL) and reaped when
/// dropped. Its standard output stays piped and unread after the first line.
pub struct Process {
    pub child: Child,
    /// From its first line, `http://HOST:PORT`.
    pub url: String,
}

impl Process {
    /// Spawns `command` with standard output piped and reads its `listening on` line.
    pub fn start(mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().expect("piped"))
            .read_line(&mut line)
            .expect("read the server's first line");
        // The process first, so that it is killed if the line is not the expected one.
        let mut process = Process {
            child,
            url: String::new(),
        };
        process.url = listening_url(&line);
        process
    }

    /// `HOST:PORT`, for raw sockets.
    pub fn addr(&self) -> &str {
        self.url.strip_prefix("http://").unwrap_or(&self.url)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
