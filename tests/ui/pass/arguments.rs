//! Arguments the body borrows, moves, changes or hands to `move` blocks, and `&mut` arguments
//! it passes on by value.
#![deny(warnings)]

use std::io::Write;

use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

/// Not `Clone`: fine as long as the body only reads it.
#[derive(Debug)]
pub struct Token(String);

#[resilient(retries = 1)]
async fn only_borrowed(token: Token, tag: String) -> Result<usize, Failure> {
    let shown = format!("{:?} {}", &token, &tag);
    Ok(shown.len() + str::len(&token.0))
}

#[resilient(retries = 1)]
async fn captured_by_move_block(name: String) -> Result<usize, Failure> {
    // The block takes `name` itself: every attempt gets its own clone.
    let task = async move { name.len() };
    Ok(task.await)
}

#[resilient(retries = 1)]
async fn captured_by_move_closure(name: String) -> Result<usize, Failure> {
    let measure = move || name.len();
    Ok(measure())
}

#[resilient(retries = 1)]
async fn changed_through_mut(mut buffer: Vec<u8>) -> Result<usize, Failure> {
    fill(&mut buffer);
    Ok(buffer.len())
}

fn fill(buffer: &mut Vec<u8>) {
    buffer.extend_from_slice(b"abc");
}

#[resilient(retries = 1)]
async fn writes_through(out: &mut Vec<u8>) -> Result<usize, Failure> {
    write_all(out)?;
    Ok(1)
}

fn write_all<W: Write>(mut out: W) -> Result<(), Failure> {
    out.write_all(b"x").map_err(|_| Failure(resilient::Error::Timeout {
        attempt: 0,
        after: std::time::Duration::ZERO,
    }))
}

#[resilient(retries = 1)]
async fn moves_a_mut_reference(out: &mut Vec<u8>, byte: u8) -> Result<usize, Failure> {
    let owned = out;
    owned.push(byte);
    Ok(owned.len())
}

#[resilient(retries = 1)]
async fn destructured((left, right): (String, u32), Point { x, y }: Point) -> Result<u32, Failure> {
    Ok(left.len() as u32 + right + x + y)
}

#[resilient(retries = 1)]
async fn conditional(#[cfg(any())] compiled_out: String, kept: String) -> Result<usize, Failure> {
    #[cfg(any())]
    drop(compiled_out);
    Ok(kept.len())
}

pub struct Point {
    x: u32,
    y: u32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let token = Token("t".into());
    assert_eq!(only_borrowed(token, "a".into()).await.unwrap(), "Token(\"t\") a".len() + 1);
    assert_eq!(captured_by_move_block("abc".into()).await.unwrap(), 3);
    assert_eq!(captured_by_move_closure("ab".into()).await.unwrap(), 2);
    assert_eq!(changed_through_mut(vec![1]).await.unwrap(), 4);
    let mut out = Vec::new();
    assert_eq!(writes_through(&mut out).await.unwrap(), 1);
    assert_eq!(moves_a_mut_reference(&mut out, 7).await.unwrap(), 2);
    assert_eq!(conditional("ab".into()).await.unwrap(), 2);
    let point = Point { x: 1, y: 2 };
    assert_eq!(destructured(("ab".into(), 3), point).await.unwrap(), 8);
}
