use resilient::resilient;

#[derive(Debug)]
pub struct Failure(resilient::Error);

impl From<resilient::Error> for Failure {
    fn from(error: resilient::Error) -> Self {
        Failure(error)
    }
}

struct Connection;

impl Connection {
    #[resilient]
    async fn close(self) -> Result<(), Failure> {
        Ok(())
    }

    #[resilient]
    async fn poll_close(self: std::pin::Pin<&mut Self>) -> Result<(), Failure> {
        Ok(())
    }
}

fn main() {}
