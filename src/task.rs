//! What a head answers, and the columns that carry its answer.
//!
//! A [`Task`] is one question asked of every paragraph: its topic, its stance
//! toward one codebook target, whose that stance is, or its named entities.
//! Its name (`topic`, `stance_<target>`, `stance_<target>_holder`,
//! `entities`) is at once the output column that carries the label, the
//! `task` key of a head folder's `head.toml`, the task of an evaluation
//! report and the key a calibration writes. Those names are made and read
//! here only; the rest of the program holds a `Task`.
//!
//! A [`HeadKind`] is what kind of head answers a task (`kind` in
//! `head.toml`, `kind` of a training source).
//!
//! Adding a kind of task: a variant here (its name, columns and head kind),
//! then the compiler names every `match` that must answer it. See
//! `docs/architecture.md`.

use polars::prelude::{DataType, Field};
use serde::{Deserialize, Serialize};
use std::fmt;

const TOPIC: &str = "topic";
const ENTITIES: &str = "entities";
const STANCE_PREFIX: &str = "stance_";
const HOLDER_SUFFIX: &str = "_holder";

/// The labels of a stance head and column.
pub const STANCE_LABELS: [&str; 3] = ["favor", "against", "none"];

/// The target of a head that answers every stance target (`task =
/// "stance_*"` in `head.toml`): it reads the target's text before the
/// paragraph, so a job gives it each codebook target that has no head of
/// its own. Never a codebook id (`is_valid_target` refuses it).
pub const ANY_TARGET: &str = "*";

/// The labels of a holder head and column.
pub const HOLDER_LABELS: [&str; 2] = ["author", "reported"];

/// One question asked of every paragraph.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Task {
    /// The paragraph's topic among the codebook's topics.
    Topic,
    /// Its stance (`favor`, `against`, `none`) toward one codebook target.
    Stance(String),
    /// Whose that stance is: the `author`'s or one `reported`.
    Holder(String),
    /// The named entities it mentions.
    Entities,
}

/// One column of a task's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Col {
    /// The label (`topic`, `stance_T`, `stance_T_holder`, `entities`).
    Label,
    /// The probability behind the label (`topic_score`, `stance_T_score`).
    Score,
    /// Every topic's score (`topic_scores`).
    Scores,
    /// P(favor), P(against) of a stance target.
    Favor,
    Against,
    /// P(reported) of a stance target's holder.
    Reported,
}

impl Task {
    /// A stance target's tasks, in output order.
    pub fn stance_pair(target: &str) -> [Task; 2] {
        [Task::Stance(target.into()), Task::Holder(target.into())]
    }

    /// Its name: the label column, and the head and report key.
    pub fn name(&self) -> String {
        self.col(Col::Label)
    }

    /// Reads a task name; `None` when it names no task.
    pub fn parse(name: &str) -> Option<Task> {
        match name {
            TOPIC => return Some(Task::Topic),
            ENTITIES => return Some(Task::Entities),
            _ => {}
        }
        let t = name.strip_prefix(STANCE_PREFIX)?;
        // Codebook ids never end in `_holder` (see `is_valid_target`).
        match t.strip_suffix(HOLDER_SUFFIX) {
            Some(h) if !h.is_empty() => Some(Task::Holder(h.into())),
            _ if !t.is_empty() => Some(Task::Stance(t.into())),
            _ => None,
        }
    }

    /// Reads a task name, or says what names a task.
    pub fn parse_named(name: &str) -> Result<Task, String> {
        Task::parse(name).ok_or_else(|| {
            format!(
                "unknown task `{name}`: expected {TOPIC}, {STANCE_PREFIX}<target>, {STANCE_PREFIX}<target>{HOLDER_SUFFIX} or {ENTITIES}"
            )
        })
    }

    /// The stance target, for stance and holder tasks.
    pub fn target(&self) -> Option<&str> {
        match self {
            Task::Stance(t) | Task::Holder(t) => Some(t),
            Task::Topic | Task::Entities => None,
        }
    }

    /// The kind of head that answers it.
    pub fn head_kind(&self) -> HeadKind {
        match self {
            Task::Topic => HeadKind::Topic,
            Task::Stance(_) => HeadKind::Stance,
            Task::Holder(_) => HeadKind::Holder,
            Task::Entities => HeadKind::Ner,
        }
    }

    /// The task a head of `kind` answers; stance and holder heads need the
    /// target.
    pub fn of_kind(kind: HeadKind, target: Option<&str>) -> Option<Task> {
        Some(match kind {
            HeadKind::Topic => Task::Topic,
            HeadKind::Ner => Task::Entities,
            HeadKind::Stance => Task::Stance(target?.into()),
            HeadKind::Holder => Task::Holder(target?.into()),
        })
    }

    /// Its labels where every codebook has the same ones (stance, holder).
    pub fn fixed_labels(&self) -> Option<&'static [&'static str]> {
        match self {
            Task::Stance(_) => Some(&STANCE_LABELS),
            Task::Holder(_) => Some(&HOLDER_LABELS),
            Task::Topic | Task::Entities => None,
        }
    }

    /// Stance on any target: the task of a head that reads the target's text.
    pub fn any_stance() -> Task {
        Task::Stance(ANY_TARGET.into())
    }

    /// Whether its labels are favor/against/none, scored with F_avg too.
    pub fn is_stance(&self) -> bool {
        matches!(self, Task::Stance(_))
    }

    /// The name of one of its columns. A holder's probability lives beside
    /// its stance's (`stance_T_reported`).
    pub fn col(&self, c: Col) -> String {
        let base = match self {
            Task::Topic => TOPIC.to_string(),
            Task::Entities => ENTITIES.to_string(),
            Task::Stance(t) | Task::Holder(t) => format!("{STANCE_PREFIX}{t}"),
        };
        match (self, c) {
            (Task::Holder(_), Col::Label) => base + HOLDER_SUFFIX,
            (_, Col::Label) => base,
            (_, c) => format!("{base}_{}", c.suffix()),
        }
    }

    /// The columns it writes, label first, with their types.
    pub fn columns(&self) -> Vec<(String, DataType)> {
        let f = DataType::Float32;
        let cols: Vec<(Col, DataType)> = match self {
            Task::Topic => vec![
                (Col::Label, DataType::String),
                (Col::Score, f),
                (Col::Scores, list_of(label_score_item())),
            ],
            Task::Stance(_) => vec![
                (Col::Label, DataType::String),
                (Col::Score, f.clone()),
                (Col::Favor, f.clone()),
                (Col::Against, f),
            ],
            Task::Holder(_) => vec![(Col::Label, DataType::String), (Col::Reported, f)],
            Task::Entities => vec![(Col::Label, list_of(entity_item()))],
        };
        cols.into_iter().map(|(c, t)| (self.col(c), t)).collect()
    }

    /// The task and column a column name is, reading a stance column's
    /// `_score`, `_favor`, `_against` and `_reported` endings as its
    /// probabilities rather than as part of the target.
    pub fn of_column(name: &str) -> Option<(Task, Col)> {
        for c in [Col::Score, Col::Scores] {
            if name == Task::Topic.col(c) {
                return Some((Task::Topic, c));
            }
        }
        let task = Task::parse(name)?;
        if let Task::Stance(t) = &task {
            for c in [Col::Score, Col::Favor, Col::Against, Col::Reported] {
                let base = t.strip_suffix(c.suffix()).and_then(|b| b.strip_suffix('_'));
                if let Some(b) = base.filter(|b| !b.is_empty()) {
                    let owner = match c {
                        Col::Reported => Task::Holder(b.into()),
                        _ => Task::Stance(b.into()),
                    };
                    return Some((owner, c));
                }
            }
        }
        Some((task, Col::Label))
    }

    /// Whether `name` is one of the columns of a task of this kind, for any
    /// target (so input columns that would clash are renamed).
    pub fn is_task_column(name: &str) -> bool {
        name.starts_with(STANCE_PREFIX) || Task::untargeted_columns().iter().any(|c| c == name)
    }

    /// The columns of the tasks without a target (topic, entities).
    pub fn untargeted_columns() -> Vec<String> {
        [Task::Topic, Task::Entities]
            .iter()
            .flat_map(Task::columns)
            .map(|c| c.0)
            .collect()
    }
}

impl Col {
    fn suffix(self) -> &'static str {
        match self {
            Col::Label => "",
            Col::Score => "score",
            Col::Scores => "scores",
            Col::Favor => "favor",
            Col::Against => "against",
            Col::Reported => "reported",
        }
    }
}

/// Whether a codebook stance id makes task names that read back as the same
/// target (a `_holder` ending would be read as a holder task).
pub fn is_valid_target(id: &str) -> bool {
    !id.is_empty() && !id.ends_with(HOLDER_SUFFIX) && id != ANY_TARGET
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Box::new(item))
}

/// `struct{label, score}`: one topic's score.
pub fn label_score_item() -> DataType {
    DataType::Struct(vec![
        Field::new("label".into(), DataType::String),
        Field::new("score".into(), DataType::Float32),
    ])
}

/// `struct{text, label, start, end, score}`: one entity.
pub fn entity_item() -> DataType {
    DataType::Struct(vec![
        Field::new("text".into(), DataType::String),
        Field::new("label".into(), DataType::String),
        Field::new("start".into(), DataType::UInt32),
        Field::new("end".into(), DataType::UInt32),
        Field::new("score".into(), DataType::Float32),
    ])
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl TryFrom<String> for Task {
    type Error = String;
    fn try_from(s: String) -> Result<Task, String> {
        Task::parse_named(&s)
    }
}

impl From<Task> for String {
    fn from(t: Task) -> String {
        t.name()
    }
}

/// What kind of head answers a task: `kind` in `head.toml` and in a
/// training source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    Topic,
    Stance,
    Holder,
    /// Token classification over IOB2 labels (always a tuned head).
    Ner,
}

impl HeadKind {
    pub fn name(self) -> &'static str {
        match self {
            HeadKind::Topic => "topic",
            HeadKind::Stance => "stance",
            HeadKind::Holder => "holder",
            HeadKind::Ner => "ner",
        }
    }

    /// Whether a head of this kind can answer `task` (a kind may answer
    /// several tasks: a stance head any target's stance).
    pub fn answers(self, task: &Task) -> bool {
        task.head_kind() == self
    }
}

impl fmt::Display for HeadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_the_same_task() {
        for t in [
            Task::Topic,
            Task::Entities,
            Task::Stance("ukraine_aid".into()),
            Task::Holder("ukraine_aid".into()),
            Task::Stance("x".into()),
        ] {
            assert_eq!(Task::parse(&t.name()), Some(t.clone()), "{t}");
            assert_eq!(Task::of_kind(t.head_kind(), t.target()), Some(t));
        }
        for bad in ["", "stance_", "stance", "topics", "entity", "holder"] {
            assert_eq!(Task::parse(bad), None, "{bad:?}");
        }
        assert!(Task::parse_named("tpoic").unwrap_err().contains("`tpoic`"));
    }

    #[test]
    fn columns_are_the_output_schema() {
        let names = |t: Task| -> Vec<String> { t.columns().into_iter().map(|c| c.0).collect() };
        assert_eq!(names(Task::Topic), ["topic", "topic_score", "topic_scores"]);
        assert_eq!(
            names(Task::Stance("aid".into())),
            [
                "stance_aid",
                "stance_aid_score",
                "stance_aid_favor",
                "stance_aid_against"
            ]
        );
        assert_eq!(
            names(Task::Holder("aid".into())),
            ["stance_aid_holder", "stance_aid_reported"]
        );
        assert_eq!(names(Task::Entities), ["entities"]);
        for t in [
            Task::Topic,
            Task::Entities,
            Task::Stance("a_b".into()),
            Task::Holder("a".into()),
        ] {
            for (name, _) in t.columns() {
                let (back, c) = Task::of_column(&name).unwrap();
                assert_eq!((&back, t.col(c)), (&t, name.clone()), "{name}");
            }
        }
        assert_eq!(Task::of_column("title"), None);
        assert!(Task::is_task_column("topic_scores") && Task::is_task_column("stance_x_favor"));
        assert!(!Task::is_task_column("title"));
    }

    #[test]
    fn head_kinds_read_from_toml() {
        #[derive(Deserialize)]
        struct M {
            kind: HeadKind,
            task: Task,
        }
        let m: M = toml::from_str("kind = \"holder\"\ntask = \"stance_aid_holder\"").unwrap();
        assert_eq!(
            (m.kind, m.task),
            (HeadKind::Holder, Task::Holder("aid".into()))
        );
        let e = toml::from_str::<M>("kind = \"stance\"\ntask = \"stance_\"")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("unknown task `stance_`"), "{e}");
        assert!(toml::from_str::<M>("kind = \"opinion\"\ntask = \"topic\"").is_err());
    }
}
