//! Progress of a build on stderr: one bar for the batch, one line per worker saying
//! which node it is on and what it is doing. Drawn only when stderr is a terminal, so
//! logs and pipes get the summary alone.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bars {
    overall: ProgressBar,
    workers: Vec<ProgressBar>,
}

impl Bars {
    pub fn new(show: bool, nodes: usize, jobs: usize) -> Bars {
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(nodes as u64));
        overall.set_style(
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} nodes {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let workers = (0..jobs)
            .map(|_| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template("  {spinner} {msg}").expect("a valid template"),
                );
                b
            })
            .collect();
        Bars { overall, workers }
    }

    /// Worker `w` is at `stage` of `node`.
    pub fn stage(&self, w: usize, node: &str, stage: &str) {
        self.workers[w].set_message(format!("{node}: {stage}"));
        self.workers[w].tick();
    }

    /// Worker `w` finished `node`.
    pub fn done(&self, w: usize, node: &str, ok: bool) {
        if !ok {
            self.overall.set_message(format!("({node} failed)"));
        }
        self.workers[w].set_message("idle");
        self.overall.inc(1);
    }

    pub fn finish(&self) {
        for b in &self.workers {
            b.finish_and_clear();
        }
        self.overall.finish_and_clear();
    }
}
