"""The zebra puzzle from natural language: the model formulates a CSP, the solver solves it, repair closes gaps.

``Formulate`` asks the model for the CSP (in the compact formulation language, decoded
under its grammar), solves it and,
when the model's formulation leaves several solutions, tells the model it is
under-constrained and shows two of them; ``Explain`` turns the checked solution
into prose. ``make_backend()`` is a scripted stand-in model whose first
formulation forgets a clue, so the repair loop runs. Run it:

    plait run examples/zebra.py:graph --input '{"problem": "<the puzzle text, e.g. zebra.PUZZLE>"}'
"""

import anyio

from plait import CSP, Explain, Formulate, Graph, ScriptedBackend
from plait.solvers import Formulation, format_formulation

PUZZLE = """\
There are five houses in a row, numbered 1 to 5 from left to right. Each has a different colour
(red, green, ivory, yellow, blue), and its owner a different nationality (Englishman, Spaniard,
Ukrainian, Norwegian, Japanese), drink (coffee, tea, milk, orange juice, water), cigarette brand
(Old Gold, Kools, Chesterfield, Lucky Strike, Parliament) and pet (dog, snails, fox, horse, zebra).
The Englishman lives in the red house. The Spaniard owns the dog. Coffee is drunk in the green house.
The Ukrainian drinks tea. The green house is immediately to the right of the ivory house. The Old Gold
smoker owns snails. Kools are smoked in the yellow house. Milk is drunk in the middle house. The
Norwegian lives in the first house. The man who smokes Chesterfields lives next to the man with the fox.
Kools are smoked in the house next to the house where the horse is kept. The Lucky Strike smoker drinks
orange juice. The Japanese smokes Parliaments. The Norwegian lives next to the blue house.
Who drinks water? Who owns the zebra?"""

GROUPS = {
    "colour": ["Red", "Green", "Ivory", "Yellow", "Blue"],
    "nationality": ["Englishman", "Spaniard", "Ukrainian", "Norwegian", "Japanese"],
    "drink": ["Coffee", "Tea", "Milk", "OrangeJuice", "Water"],
    "smoke": ["OldGold", "Kools", "Chesterfield", "LuckyStrike", "Parliament"],
    "pet": ["Dog", "Snails", "Fox", "Horse", "Zebra"],
}
CLUES = [
    "Englishman == Red", "Spaniard == Dog", "Coffee == Green", "Ukrainian == Tea", "Green == Ivory + 1",
    "OldGold == Snails", "Kools == Yellow", "Milk == 3", "Norwegian == 1", "abs(Chesterfield - Fox) == 1",
    "abs(Kools - Horse) == 1", "LuckyStrike == OrangeJuice", "Japanese == Parliament", "abs(Norwegian - Blue) == 1",
]


def zebra_model(clues: list[str] = CLUES) -> dict:
    """The CSP: a house number 1..5 per attribute value."""
    return {
        "variables": [{"name": n, "domain": {"min": 1, "max": 5}} for group in GROUPS.values() for n in group],
        "constraints": [{"kind": "all_different", "variables": g} for g in GROUPS.values()]
        + [{"kind": "expression", "expression": c} for c in clues],
    }


graph = Graph("zebra", description="natural-language logic puzzle -> CSP (with repair) -> solver -> prose")
formulate = graph.add(Formulate(max_rounds=3, expect_unique=True))
explain = graph.add(Explain())


@graph.node
def answer(formulate: Formulation, explain: str) -> dict:
    """The explanation with the checked solution and how many rounds of repair it took."""
    return {"status": formulate.status, "rounds": len(formulate.rounds), "answer": explain,
            "solution": formulate.solution}


graph.chain(formulate, explain)
graph.join([formulate, explain], answer)


def make_backend() -> ScriptedBackend:
    """A scripted model: forgets the Chesterfield/fox clue first, then fixes it when told."""
    forgetful = [c for c in CLUES if "Chesterfield" not in c]
    return ScriptedBackend([
        format_formulation(CSP.model_validate(zebra_model(forgetful))),  # as the model writes it
        format_formulation(CSP.model_validate(zebra_model())),
        "The Norwegian drinks water, and the Japanese owns the zebra.",
    ])


async def main() -> None:
    result = await graph.run({"problem": PUZZLE}, backend=make_backend())
    print(result.output["answer"], f"(after {result.output['rounds']} formulation rounds)")


if __name__ == "__main__":
    anyio.run(main)
