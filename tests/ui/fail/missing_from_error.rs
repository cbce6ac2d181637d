use resilient::resilient;

#[derive(Debug)]
pub enum FetchError {
    NotFound,
}

#[resilient(retries = 3)]
async fn fetch(url: &str) -> Result<usize, FetchError> {
    if url.is_empty() {
        return Err(FetchError::NotFound);
    }
    Ok(url.len())
}

fn main() {}
