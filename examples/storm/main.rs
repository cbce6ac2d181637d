//! Retry storms in virtual time.
//!
//! Reproduces the model of Marc Brooker's "Exponential Backoff And Jitter" (AWS Architecture
//! Blog, 2015) with this library's own backoff code, then draws what synchronised retries look
//! like and what a breaker does to the load of an outage:
//!
//! ```text
//! cargo run --release --example storm                 # tables, and SVGs under target/storm/
//! cargo run --release --example storm -- --csv        # strategy,clients,calls,time_ms
//! cargo run --release --example storm -- --help
//! ```
//!
//! Nothing sleeps. The study's model is a discrete-event simulation with its own event queue;
//! the outage runs the library's `Retry` loop and breakers as tasks on tokio's paused clock.
//! A fixed seed gives the same numbers on every run.

mod cli;
mod landing;
mod occ;
mod outage;
mod plot;
mod queue;

use std::error::Error;
use std::process::ExitCode;
use std::time::Instant;

use cli::{Command, Options};
use landing::Crowd;
use occ::{Measure, Row, Strategy};
use outage::Scenario;

fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let rows = occ::sweep(&Strategy::ALL, &options.clients, options.runs, options.seed);
    let swept = started.elapsed();

    let crowd = Crowd::DEFAULT;
    let landings = landing::landings(&crowd, options.seed);
    let scenarios = outage::scenarios(options.seed)?;

    if options.csv {
        print!("{}", csv(&rows));
    } else {
        print_sweep(options, &rows);
        print_landings(&crowd, &landings);
        for scenario in &scenarios {
            print_outage(scenario);
        }
    }
    eprintln!(
        "swept {} cells of {} runs in {:.2} s",
        rows.len(),
        options.runs,
        swept.as_secs_f64()
    );

    if let Some(figures) = &options.figures {
        plot::storm(&figures.storm, &rows)?;
        plot::landing(&figures.landing, &crowd, &landings)?;
        plot::outage(&figures.outage, &scenarios)?;
        for path in [&figures.storm, &figures.landing, &figures.outage] {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

/// The sweep as CSV: a header, then one line per strategy and client count.
fn csv(rows: &[Row]) -> String {
    let mut out = String::from("strategy,clients,calls,time_ms\n");
    for row in rows {
        let name = row.strategy.name();
        out += &format!(
            "{name},{},{:.1},{:.1}\n",
            row.clients, row.calls, row.time_ms
        );
    }
    out
}

fn print_sweep(options: &Options, rows: &[Row]) {
    println!(
        "Retry storm: N clients each update one row once under optimistic concurrency; \
         means of {} runs, seed {}.",
        options.runs, options.seed
    );
    for measure in Measure::BOTH {
        println!("\n{}, mean per run", measure.title());
        print!("{:>8}", "clients");
        for strategy in Strategy::ALL {
            print!("{:>14}", strategy.name());
        }
        println!();
        for &clients in &options.clients {
            print!("{clients:>8}");
            for strategy in Strategy::ALL {
                let cell = rows
                    .iter()
                    .find(|r| r.strategy == strategy && r.clients == clients);
                match cell {
                    Some(row) => print!("{:>14.1}", measure.of(row)),
                    None => print!("{:>14}", "-"),
                }
            }
            println!();
        }
    }
}

fn print_landings(crowd: &Crowd, landings: &[landing::Landing]) {
    println!(
        "\nRetry landings: {} clients fail at the same instant and retry {} times \
         (base {} ms, cap {} ms)",
        crowd.clients,
        crowd.retries,
        crowd.base.as_millis(),
        crowd.cap.as_millis(),
    );
    let bin = format!("busiest {} ms bin", crowd.bin.as_millis());
    let beyond = format!("after {} ms", crowd.horizon.as_millis());
    println!("{:>14}{bin:>22}{beyond:>14}", "jitter");
    for landing in landings {
        println!(
            "{:>14}{:>22}{:>14}",
            landing.jitter.as_str(),
            landing.peak(),
            landing.beyond
        );
    }
}

fn print_outage(scenario: &Scenario) {
    let outage = &scenario.outage;
    println!(
        "\nOutage, {}: {} clients each start a call every {} ms; the server is down from {} s \
         to {} s of {} s",
        scenario.name,
        outage.clients,
        outage.period.as_millis(),
        outage.down_from.as_secs(),
        outage.down_until.as_secs(),
        outage.duration.as_secs(),
    );
    println!(
        "{:>28}{:>9}{:>10}{:>9}{:>12}{:>12}{:>14}{:>9}",
        "setup",
        "offered",
        "requests",
        "overall",
        "while down",
        "peak req/s",
        "peak retry/s",
        "refused"
    );
    for load in &scenario.loads {
        println!(
            "{:>28}{:>9}{:>10}{:>8.2}x{:>11.2}x{:>12.0}{:>14.0}{:>9}",
            load.setup.label(),
            load.offered,
            load.requests,
            load.amplification(),
            load.amplification_down(),
            load.peak_per_second(outage.bin),
            load.peak_retries_per_second(outage.bin),
            load.rejected,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_the_header_and_one_line_per_cell() {
        let rows = occ::sweep(&[Strategy::None, Strategy::Decorrelated], &[1, 2], 2, 1);
        let text = csv(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "strategy,clients,calls,time_ms");
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("none,1,1.0,"), "{}", lines[1]);
        assert!(lines[4].starts_with("decorrelated,2,"), "{}", lines[4]);
    }
}
