//! Free functions: generics, where clauses, `impl Trait` arguments, attributes and docs.
#![deny(warnings)]

use std::fmt::Display;

use resilient::resilient;

#[derive(Debug)]
pub enum FetchError {
    Resilience(resilient::Error),
}

impl From<resilient::Error> for FetchError {
    fn from(error: resilient::Error) -> Self {
        FetchError::Resilience(error)
    }
}

/// Documented, with an attribute of its own that must survive.
#[resilient]
#[must_use = "the result says whether the fetch worked"]
pub async fn plain(url: &str) -> Result<usize, FetchError> {
    Ok(url.len())
}

#[resilient(retries = 2)]
async fn generic<T, U>(value: T, label: &U) -> Result<String, FetchError>
where
    T: Display + Clone + Send,
    U: Display + ?Sized,
{
    Ok(format!("{label}: {value}"))
}

#[resilient(jitter = "equal")]
async fn impl_trait_args(
    name: impl Display + Clone,
    by_ref: &impl Display,
) -> Result<String, FetchError> {
    Ok(format!("{name} {by_ref}"))
}

#[resilient(timeout = "1s")]
async fn returns_impl_trait(count: u32) -> Result<impl Display, FetchError> {
    Ok(count)
}

#[resilient]
async fn lifetimes<'a>(text: &'a str, _unused: (u8, u8)) -> Result<&'a str, FetchError> {
    Ok(text.trim())
}

#[resilient(retries = 1)]
async fn question_mark(text: &str) -> Result<u32, FetchError> {
    let parsed: Result<u32, resilient::Error> =
        text.parse().map_err(|_| resilient::Error::Timeout {
            attempt: 1,
            after: std::time::Duration::from_secs(1),
        });
    let value = parsed?;
    if value == 0 {
        return Ok(1);
    }
    Ok(value)
}

#[resilient]
async fn anyhow_result(path: String) -> anyhow::Result<String> {
    Ok(path)
}

#[resilient]
async fn inner_attributes(count: u32) -> Result<u32, FetchError> {
    #![allow(unused_variables)]
    let unused = count;
    Ok(1)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(plain("abc").await.unwrap(), 3);
    assert_eq!(generic(1, "one").await.unwrap(), "one: 1");
    assert_eq!(impl_trait_args("a", &"b").await.unwrap(), "a b");
    assert_eq!(returns_impl_trait(4).await.unwrap().to_string(), "4");
    assert_eq!(lifetimes(" x ", (1, 2)).await.unwrap(), "x");
    assert_eq!(question_mark("0").await.unwrap(), 1);
    assert_eq!(anyhow_result("p".into()).await.unwrap(), "p");
    assert_eq!(inner_attributes(2).await.unwrap(), 1);
}
