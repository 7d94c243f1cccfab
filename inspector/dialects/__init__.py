"""What shape a row has, told from its values, and how each shape maps onto TRL's dataset types.

A *shape* names the dialect a row is written in (TRL's own columns, alpaca, ShareGPT, ...), the TRL type it
stands for, its format (standard strings or conversational message lists) and the fields it is read from.
Every function here is total: it never raises on a malformed row, it only declines to classify it.

>>> classify_row({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]})
Shape(dialect='trl', type='language_modeling', format='conversational', implicit_prompt=False, fields=(Field(name='messages', kind='messages', required=True),))
>>> classify_row({"instruction": "Add 2 and 2", "input": "", "output": "4"}).dialect
'alpaca'
>>> classify_row({"unrelated": 1}) is None
True

Each dialect is one module of this package: a `Dialect` object (`core.Dialect`) that detects the dialect's rows
(`detect`), reads them as their TRL type (`read`), and names what reading it does, the roles it maps and an example row. The modules
are imported, and so registered, when this package is. `classify_row` asks the registered dialects in priority
order, lower first, and the first shape found is the row's, since one row may fit several:

- 100-500, columns only one format writes: OpenAssistant's trees (`prompt` and `replies`), OpenAI's
  `preferred_output`, Math-Shepherd's tagged steps, PRM800K's labels, one `instance` of a Self-Instruct or
  Super-NaturalInstructions task, TRL's stepwise `completions` and `labels`;
- 600-640, `chosen` and `rejected`, which make a row a preference pair whatever else it holds: single messages
  (ShareGPT's, then others'), UltraFeedback's conversations that open with the prompt, hh-rlhf transcripts, and
  TRL's own last;
- 700-1800, other named columns, the narrow before the broad: `chosen_messages`, `response_j`, ColossalChat's and
  UltraFeedback's `completion` before TRL's `completion` and `label`, then TRL's `prompt` and `completion`, rated
  completions, TRL's `prompt` alone, BFCL, xLAM, MT-Bench, turn pairs, `context` with answers;
- 1860-1960, a conversation column: first the tool-calling dialects whose calls are written in a form of their own
  (Hermes' tags, Anthropic's blocks, ms-swift's roles), then ShareGPT's turns, prompt sets, turn flags, typed
  content, a KTO label, then plain messages (TRL's `messages` or another column);
- 2000-2600, instructions and questions, which a conversation row may also have: alpaca, instruction/response,
  graded answers, multiple choice, question/answer, and `text` last (a transcript, else a document).

>>> [(d.priority, d.name) for d in dialects()][:6]
[(100, 'message_tree'), (200, 'openai_preference'), (300, 'math_shepherd'), (400, 'prm800k'), (450, 'task_instances'), (500, 'trl')]

To add a dialect, add a module here with its `Dialect` subclass and `register(...)` it at a free priority (or,
from a plug-in or a test, use `with registered(...)`); no other module changes.
"""

import importlib
import pkgutil

from trlprep.inspector.dialects.columns import find_conversation_column, is_id_column, without_ids
from trlprep.inspector.dialects.core import (
    DIALECT_DESCRIPTIONS,
    DIALECT_ROLES,
    DIALECT_STYLES,
    Dialect,
    Field,
    Shape,
    classify_row,
    dialects,
    register,
    registered,
    shape_key,
    read_trl,
    to_trl,
    unread_format,
    unregister,
)
from trlprep.inspector.dialects.graded_answers import answer_list
from trlprep.inspector.dialects.math_shepherd import STEP_TAG, shepherd_steps
from trlprep.inspector.dialects.messages import (
    CHAT_ROLES,
    ROLE_ALIASES,
    SHAREGPT_ROLES,
    content_text,
    message_style,
    sharegpt_tool_calls,
    single_message_style,
    split_parts,
    to_chat_message,
    to_messages,
)
from trlprep.inspector.dialects.multiple_choice import choice_index, choice_letter, choice_texts, multiple_choice_prompt
from trlprep.inspector.dialects.prm800k import prm800k_steps
from trlprep.inspector.dialects.prompts import prompt_turn_end, shared_prompt_length, user_turns_only
from trlprep.inspector.dialects.question_answer import final_answer
from trlprep.inspector.dialects.rated_completions import parallel_scores, rated_pair, scored_item
from trlprep.inspector.dialects.transcript import looks_like_transcript, transcript_to_messages

# Every module of the package is imported: a dialect's module registers its objects when it is.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "CHAT_ROLES", "DIALECT_DESCRIPTIONS", "DIALECT_ROLES", "DIALECT_STYLES", "ROLE_ALIASES", "SHAREGPT_ROLES", "STEP_TAG", "Dialect", "Field", "Shape",
    "answer_list", "choice_index", "choice_letter", "choice_texts", "classify_row", "content_text", "dialects",
    "final_answer", "find_conversation_column", "is_id_column", "looks_like_transcript", "message_style",
    "multiple_choice_prompt", "parallel_scores", "prm800k_steps", "prompt_turn_end", "rated_pair", "read_trl",
    "register", "registered", "scored_item", "shape_key", "shared_prompt_length", "sharegpt_tool_calls",
    "shepherd_steps", "single_message_style", "split_parts", "to_chat_message", "to_messages", "to_trl",
    "transcript_to_messages", "unread_format", "unregister", "user_turns_only", "without_ids",
]
