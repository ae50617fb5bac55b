//! From model outputs to labels, per paragraph: topic scores and the best
//! topic, each stance target's P(favor), P(against) and decision, and the
//! entities. Pure functions of one window's [`Outputs`], so a paragraph's
//! labels never depend on what else was in its window or batch.

use crate::error::Result;
use crate::heads;
use crate::infer::Outputs;
use crate::models::head as head_file;
use crate::plan::{Plan, Targets, TopicResult, Via};
use crate::record::{Row, Stance};
use crate::task::Task;
use rayon::prelude::*;

/// The labels and probabilities of the head for `task` on a paragraph.
fn head_probs<'p>(
    plan: &'p Plan,
    task: &Task,
    out: &Outputs,
    para: u32,
) -> (&'p [String], Vec<f32>) {
    if let Some(h) = plan.job.models.heads.iter().find(|h| h.meta.task == *task) {
        return (&h.meta.labels, h.probs(&out.feature(para)));
    }
    let (i, (_, meta)) = plan
        .job
        .models
        .tuned
        .iter()
        .enumerate()
        .find(|(_, t)| t.1.task == *task)
        .expect("Via::Head is chosen only with a head for the task");
    // Window logits are averaged, then the softmax (temperature folded in).
    let logits = heads::mean_rows(&out.tuned_windows(i as u16, para));
    (&meta.labels, heads::softmax(&logits, 1.0))
}

/// Topics of the window's `n` paragraphs (`None` where topics do not run).
pub fn topics(
    plan: &Plan,
    out: &Outputs,
    anchors: &[Vec<f32>],
    n: usize,
) -> Vec<Option<TopicResult>> {
    let (Some(cb), Some(via)) = (plan.cb, plan.topic_via) else {
        return vec![None; n];
    };
    let ts = &cb.topics;
    (0..n)
        .into_par_iter()
        .map(|p| {
            let p = p as u32;
            let scores: Vec<f32> = match via {
                Via::Nli => {
                    let logits: Vec<Vec<Vec<f32>>> = (0..ts.topics.len())
                        .map(|h| out.nli_windows(p, h as u32))
                        .collect();
                    heads::nli_topic_scores(
                        &logits,
                        plan.nli_labels.expect("nli labels"),
                        ts.multi_label,
                    )
                }
                Via::Embedding => heads::embedding_topic_scores(
                    &out.emb_windows(p),
                    &anchors[..ts.topics.len()],
                    ts.temperature,
                    ts.multi_label,
                ),
                Via::Head => {
                    let (labels, probs) = head_probs(plan, &Task::Topic, out, p);
                    ts.topics
                        .iter()
                        .map(|t| head_file::prob_of(labels, &probs, &t.id))
                        .collect()
                }
            };
            let scores: Vec<f32> = scores.into_iter().map(heads::round).collect();
            let mut best = 0;
            for (i, s) in scores.iter().enumerate() {
                if *s > scores[best] {
                    best = i;
                }
            }
            let best = (scores[best] >= ts.threshold).then(|| ts.topics[best].id.clone());
            Some(TopicResult { scores, best })
        })
        .collect()
}

/// Fills the labels of the window's rows (row `p` is paragraph `p`);
/// `only[p]` restricts paragraph `p`'s stance targets.
pub fn rows(
    plan: &Plan,
    rows: &mut [Row],
    out: &Outputs,
    anchors: &[Vec<f32>],
    topics: &[Option<TopicResult>],
    only: &[Option<&Targets>],
) -> Result<()> {
    rows.par_iter_mut().enumerate().for_each(|(p, row)| {
        let pid = p as u32;
        row.truncated_windows = out
            .windows_of
            .get(&pid)
            .copied()
            .filter(|&w| w > 1)
            .unwrap_or(0);
        if plan.job.engine.embeddings {
            row.embedding = Some(out.feature(pid));
        }
        if let (Some(cb), Some(t)) = (plan.cb, &topics[p]) {
            let best_i = t
                .best
                .as_ref()
                .and_then(|b| cb.topics.topics.iter().position(|x| &x.id == b));
            row.topic = t.best.clone();
            row.topic_score = Some(match best_i {
                Some(i) => t.scores[i],
                None => t.scores.iter().cloned().fold(0.0, f32::max),
            });
            row.topic_scores = Some(
                cb.topics
                    .topics
                    .iter()
                    .zip(&t.scores)
                    .map(|(tp, s)| (tp.id.clone(), *s))
                    .collect(),
            );
        }
        if let Some(cb) = plan.cb {
            row.stances = (0..cb.stances.len())
                .map(|i| match plan.scores(i, only[p]) {
                    true => stance(plan, i, pid, out, anchors, topics[p].as_ref()),
                    false => Stance::default(),
                })
                .collect();
        }
        if let Some(scheme) = &plan.scheme {
            let head = plan.job.ner_head().is_some();
            // The head read the encoder's input, text prefix included.
            let shift = if head { plan.prefix.chars().count() } else { 0 };
            let tokens = out.ner_tokens(pid, head, shift);
            let mut ents = heads::decode_entities(
                &row.text,
                &tokens,
                scheme,
                plan.job.engine.aggregation,
                head,
            );
            if plan.job.engine.entity_spans == heads::EntitySpans::Word {
                heads::widen_to_words(&row.text, &mut ents);
            }
            row.entities = Some(ents);
        }
    });
    Ok(())
}

/// Stance target `i` on paragraph `pid`.
fn stance(
    plan: &Plan,
    i: usize,
    pid: u32,
    out: &Outputs,
    anchors: &[Vec<f32>],
    topic: Option<&TopicResult>,
) -> Stance {
    let st = &plan
        .cb
        .expect("stance targets come from the codebook")
        .stances[i];
    let Some(&via) = plan.stance_via.get(i) else {
        return Stance::default();
    };
    if plan.gated(i) && !plan.passes_gate(i, topic) {
        return Stance::default();
    }
    let slot = plan.stance_slot(i);
    let (f, a) = match via {
        Via::Nli => {
            let l = plan.nli_labels.expect("nli labels");
            let side = |h: u32| {
                let ws = out.nli_windows(pid, h);
                ws.iter().map(|w| heads::entail_prob(w, l)).sum::<f32>() / ws.len().max(1) as f32
            };
            (side(slot), side(slot + 1))
        }
        Via::Embedding => {
            let s = slot as usize;
            let a = [
                anchors[s].clone(),
                anchors[s + 1].clone(),
                anchors[s + 2].clone(),
            ];
            heads::embedding_stance(&out.emb_windows(pid), &a, st.temperature)
        }
        Via::Head => {
            let (labels, probs) = head_probs(plan, &Task::Stance(st.id.clone()), out, pid);
            (
                head_file::prob_of(labels, &probs, "favor"),
                head_file::prob_of(labels, &probs, "against"),
            )
        }
    };
    let (f, a) = (heads::round(f), heads::round(a));
    let (label, score) = heads::stance_decision(f, a, st.threshold);
    let task = Task::Holder(st.id.clone());
    let reported = plan.job.has_head(&task).then(|| {
        let (labels, probs) = head_probs(plan, &task, out, pid);
        heads::round(head_file::prob_of(labels, &probs, "reported"))
    });
    let (label, score, holder) = heads::holder_decision(label, score, reported, st.holder);
    Stance {
        label: Some(label),
        score: Some(heads::round(score)),
        favor: Some(f),
        against: Some(a),
        holder,
        reported,
    }
}
