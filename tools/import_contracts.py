"""An allow-list import contract for import-linter: a context is reached only through its
``interfaces`` module.

For every listed context package ``<root>.<context>``, any module outside that package may
import ``<root>.<context>.interfaces`` (and nothing else of it), unless the importer is an
assembler (the composition root, ``web``, ``cli``, ``bench``), which wires services together.
``public`` names the few further modules a context publishes on purpose, as
``<context>.<module>`` (each with its reason in pyproject.toml). A new module in a context is
protected from the start: nothing has to be added to a list.
"""

from __future__ import annotations

from importlinter import Contract, ContractCheck, fields, output


class InterfacesOnlyContract(Contract):
    type_name = "interfaces_only"

    root = fields.StringField()
    contexts = fields.ListField(subfield=fields.StringField())
    assemblers = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField(), required=False)

    @staticmethod
    def _within(module: str, package: str) -> bool:
        return module == package or module.startswith(package + ".")

    def check(self, graph, verbose):  # type: ignore[no-untyped-def]
        root = str(self.root)
        assemblers = [f"{root}.{name}" for name in self.assemblers]  # type: ignore[attr-defined]
        public = list(self.public) if self.public else []  # type: ignore[arg-type]
        broken: list[tuple[str, str, str]] = []
        for context in self.contexts:  # type: ignore[attr-defined]
            package = f"{root}.{context}"
            if package not in graph.modules:
                continue
            allowed = [f"{package}.interfaces"] + [
                f"{root}.{name}" for name in public if name.startswith(context + ".")]
            for module in sorted(graph.find_descendants(package) | {package}):
                if any(self._within(module, target) for target in allowed):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(module)):
                    if self._within(importer, package):
                        continue
                    if any(self._within(importer, a) for a in assemblers):
                        continue
                    details = graph.get_import_details(importer=importer, imported=module)
                    lines = ", ".join(str(d["line_number"]) for d in details) or "?"
                    broken.append((importer, module, lines))
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check):  # type: ignore[no-untyped-def]
        output.print_error("Imports of another context's modules other than its interfaces:",
                           bold=False)
        output.new_line()
        for importer, imported, lines in check.metadata["broken"]:
            output.print_error(f"- {importer} -> {imported} (l.{lines})", bold=False)
        output.new_line()
