//! Elastic tabstops as Go's `text/tabwriter` lays them out (docker's
//! formatter uses `NewWriter(out, 10, 1, 3, ' ', 0)` for tables and
//! `NewWriter(out, 20, 1, 1, ' ', 0)` for `version`).
//!
//! Text is split into lines and lines into tab-terminated cells; the text
//! after the last tab of a line is not part of any column. A column block is
//! a run of consecutive lines that have a cell in that column; its width is
//! the widest cell plus `padding`, at least `minwidth`.

pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut w = Writer { lines: &lines, minwidth, padding, out: String::with_capacity(text.len() * 2) };
    let mut widths = Vec::new();
    w.format(&mut widths, 0, lines.len());
    w.out
}

/// Display width of a cell (one per character; wide East Asian characters
/// count two, as in docker's fork of tabwriter).
pub fn text_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = (0x1100..=0x115F).contains(&u)
        || (0x2E80..=0xA4CF).contains(&u)
        || (0xAC00..=0xD7A3).contains(&u)
        || (0xF900..=0xFAFF).contains(&u)
        || (0xFE30..=0xFE4F).contains(&u)
        || (0xFF00..=0xFF60).contains(&u)
        || (0xFFE0..=0xFFE6).contains(&u)
        || (0x1F300..=0x1F64F).contains(&u)
        || (0x20000..=0x3FFFD).contains(&u);
    if wide {
        2
    } else {
        1
    }
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    minwidth: usize,
    padding: usize,
    out: String,
}

impl Writer<'_> {
    fn write_lines(&mut self, widths: &[usize], line0: usize, line1: usize) {
        for i in line0..line1 {
            let line = &self.lines[i];
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(cell);
                if j < widths.len() {
                    let w = text_width(cell);
                    for _ in w..widths[j] {
                        self.out.push(' ');
                    }
                }
            }
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }

    fn format(&mut self, widths: &mut Vec<usize>, line0: usize, line1: usize) {
        let column = widths.len();
        let mut line0 = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            // A cell exists in this column: print the lines before the block.
            self.write_lines(widths, line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(text_width(line[column]) + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format(widths, line0, this);
            widths.pop();
            line0 = this;
            // Go's loop increments `this` past the line that ended the block;
            // that line has no cell in this column, so nothing is lost.
            this += 1;
        }
        self.write_lines(widths, line0, line1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_table_alignment() {
        let text = "ID  \tHOSTNAME\tSTATUS\tAVAILABILITY\tMANAGER STATUS\tENGINE VERSION\n\
                    tjjggogqpnpj2phbfbz8jd5oq *\tnode-1\tReady\tActive\tLeader\t0.1.0\n\
                    abcdefghijklmnopqrstuvwxy  \tnode-2\tReady\tActive\t\t0.1.0\n";
        let want = "ID                            HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION\n\
                    tjjggogqpnpj2phbfbz8jd5oq *   node-1     Ready     Active         Leader           0.1.0\n\
                    abcdefghijklmnopqrstuvwxy     node-2     Ready     Active                          0.1.0\n";
        assert_eq!(tabwrite(text, 10, 3), want);
    }

    #[test]
    fn header_only_task_table() {
        let text = "ID\tNAME\tIMAGE\tNODE\tDESIRED STATE\tCURRENT STATE\tERROR\tPORTS\n";
        assert_eq!(tabwrite(text, 10, 3), "ID        NAME      IMAGE     NODE      DESIRED STATE   CURRENT STATE   ERROR     PORTS\n");
    }

    #[test]
    fn single_cell_lines_break_blocks() {
        let text = "Client:\n Version:\t0.1.0\n API version:\t1.44\n\nServer:\n  Version:\tx\n";
        let want = "Client:\n Version:           0.1.0\n API version:       1.44\n\nServer:\n  Version:          x\n";
        assert_eq!(tabwrite(text, 20, 1), want);
    }

    #[test]
    fn ragged_lines() {
        // Lines with fewer cells end a column's block (Go semantics).
        let text = "a\tb\tc\nlonger-cell\td\n\te\tf\n";
        let want = "a             b   c\nlonger-cell   d\n              e   f\n";
        assert_eq!(tabwrite(text, 0, 3), want);
    }
}
