use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

#[resilient]
async fn lookup(key: &str) -> Option<usize> {
    Some(key.len())
}

fn main() {}
