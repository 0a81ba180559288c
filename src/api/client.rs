//! The CLI's end of the control socket: send one request, read its answer.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use serde_json::Value;

use super::proto::{Header, Request, Verb, VERSION};

/// How long the client waits for any line of an answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An answer: the whole result, or a stream's items.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `result`.
    Result(Value),
    /// Streamed items, and whether the server stopped at a limit.
    Items {
        /// The stream's kind.
        kind: String,
        /// The items.
        items: Vec<Value>,
        /// The server stopped at `--limit`.
        truncated: bool,
    },
}

/// Send `verb` to the server at `socket` and collect the answer.
///
/// # Errors
/// The socket cannot be reached (with a hint), the server refused (its message), or it
/// answered something that is not protocol version 1.
pub fn call(socket: &Path, verb: Verb) -> Result<Answer, String> {
    let stream = UnixStream::connect(socket).map_err(|e| {
        format!(
            "{}: {e} (is xgw running? the socket is [control] socket, or pass --socket PATH)",
            socket.display()
        )
    })?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_string(&Request {
        version: VERSION,
        verb,
    })
    .map_err(|e| e.to_string())?;
    line.push('\n');
    // A busy server answers before reading and closes: then the write fails, and the
    // answer already waiting says why.
    let sent = (&stream).write_all(line.as_bytes());
    let mut r = BufReader::new(&stream);
    let first = match (read_line(&mut r), sent) {
        (Ok(l), _) => l,
        (Err(_), Err(e)) => return Err(format!("{}: {e}", socket.display())),
        (Err(e), Ok(())) => return Err(e),
    };
    let header: Header =
        serde_json::from_str(&first).map_err(|e| format!("bad answer from the server: {e}"))?;
    if header.version != VERSION {
        return Err(format!(
            "server speaks protocol version {}, this client {VERSION}",
            header.version
        ));
    }
    if !header.ok {
        return Err(header.error.unwrap_or_else(|| "refused".into()));
    }
    if let Some(kind) = header.stream {
        let mut items = Vec::new();
        loop {
            let v: Value = serde_json::from_str(&read_line(&mut r)?)
                .map_err(|e| format!("bad stream line: {e}"))?;
            if let Some(item) = v.get("item") {
                items.push(item.clone());
            } else if let Some(end) = v.get("end") {
                let truncated = end.get("truncated").and_then(Value::as_bool) == Some(true);
                return Ok(Answer::Items {
                    kind,
                    items,
                    truncated,
                });
            } else if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(e.to_owned());
            } else {
                return Err(format!("bad stream line: {v}"));
            }
        }
    }
    Ok(Answer::Result(header.result.unwrap_or(Value::Null)))
}

fn read_line(r: &mut impl BufRead) -> Result<String, String> {
    let mut s = String::new();
    match r.read_line(&mut s) {
        Ok(0) => Err("the server closed the connection".into()),
        Ok(_) => Ok(s),
        Err(e) => Err(format!("reading the answer: {e}")),
    }
}
