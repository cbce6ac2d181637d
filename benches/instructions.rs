//! Instructions per call, counted by callgrind: the overhead bench's cases measured in a unit
//! that a shared, noisy machine does not move.
//!
//! Each case runs in a child process under `valgrind --tool=callgrind`, once with 100,000 calls
//! and once with 200,000; the difference divided by 100,000 is the cost of one call, with the
//! process's start-up and the runtime's set-up cancelled out.
//!
//! Run: `cargo bench --bench instructions` (needs valgrind).

use std::hint::black_box;
use std::ops::ControlFlow;
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

use resilient::{AlwaysTransient, Breaker, Call, Error, Retry, RetryPolicy};

/// Set in the child: which case to run (an index into `CASES`), and how many calls.
const CASE: &str = "RESILIENT_INSTRUCTIONS_CASE";
const CALLS: &str = "RESILIENT_INSTRUCTIONS_CALLS";

/// The cases, as the table names them; `run_case` runs them by index.
const CASES: [&str; 6] = [
    "direct",
    "`#[resilient]`",
    "`#[resilient(breaker = \"…\")]`",
    "`Call` by hand, named breaker",
    "`Retry::run`, named breaker",
    "`#[resilient(breaker = \"…\", timeout = \"30s\")]`",
];

async fn trivial(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

#[resilient::resilient]
async fn annotated(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

#[resilient::resilient(breaker = "instructions-attr")]
async fn annotated_with_breaker(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

#[resilient::resilient(breaker = "instructions-attr-timeout", timeout = "30s")]
async fn annotated_with_timeout(x: u64) -> Result<u64, Error> {
    Ok(x.wrapping_add(1))
}

async fn by_hand(x: u64) -> Result<u64, Error> {
    static POLICY: RetryPolicy = RetryPolicy::new();
    static BREAKER: OnceLock<Breaker> = OnceLock::new();
    let breaker = BREAKER.get_or_init(|| resilient::breaker("instructions-hand"));
    let mut call = Call::new(&POLICY, Some(breaker), AlwaysTransient);
    loop {
        if let ControlFlow::Break(result) = call.attempt(trivial(x)).await {
            return result;
        }
    }
}

async fn through_retry_run(x: u64) -> Result<u64, Error> {
    static BREAKER: OnceLock<Breaker> = OnceLock::new();
    let breaker = BREAKER.get_or_init(|| resilient::breaker("instructions-retry-run"));
    Retry::new(RetryPolicy::new())
        .breaker(breaker)
        .run(move || trivial(x))
        .await
}

/// The child: `calls` calls of one case in one loop inside one future.
fn run_case(case: usize, calls: u64) -> ExitCode {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return ExitCode::FAILURE;
    };
    runtime.block_on(async {
        for i in 0..calls {
            let x = black_box(i);
            let result = match case {
                0 => trivial(x).await,
                1 => annotated(x).await,
                2 => annotated_with_breaker(x).await,
                3 => by_hand(x).await,
                4 => through_retry_run(x).await,
                _ => annotated_with_timeout(x).await,
            };
            black_box(result.ok());
        }
    });
    ExitCode::SUCCESS
}

/// Instructions callgrind counts for a child running case `case` `calls` times.
fn instructions(case: usize, calls: u64) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .env(CASE, case.to_string())
        .env(CALLS, calls.to_string())
        .output()
        .map_err(|e| format!("cannot run valgrind ({e}); install it to count instructions"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("valgrind failed on {}:\n{log}", CASES[case]));
    }
    // callgrind closes with `==pid== Collected : 12,345,678`.
    log.lines()
        .find_map(|line| {
            line.split_once("Collected :")
                .map(|(_, n)| n.trim().replace(',', ""))
        })
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no instruction count in callgrind's output:\n{log}"))
}

fn main() -> ExitCode {
    if let (Ok(case), Ok(calls)) = (std::env::var(CASE), std::env::var(CALLS)) {
        return match (case.parse(), calls.parse()) {
            (Ok(case), Ok(calls)) => run_case(case, calls),
            _ => ExitCode::FAILURE,
        };
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and wants no run.
    if !std::env::args().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    const FEW: u64 = 100_000;
    const MANY: u64 = 200_000;
    println!("| call of a trivial `async fn` | instructions per call | over direct |");
    println!("| --- | ---: | ---: |");
    let mut direct = None;
    for (case, name) in CASES.iter().enumerate() {
        let per_call = instructions(case, FEW)
            .and_then(|few| Ok((few, instructions(case, MANY)?)))
            .map(|(few, many)| many.saturating_sub(few) as f64 / (MANY - FEW) as f64);
        let per_call = match per_call {
            Ok(n) => n,
            Err(message) => {
                eprintln!("{message}");
                return ExitCode::FAILURE;
            }
        };
        let over = direct.map_or(String::new(), |d: f64| format!("+{:.0}", per_call - d));
        direct.get_or_insert(per_call);
        println!("| {name} | {per_call:.0} | {over} |");
    }
    ExitCode::SUCCESS
}
