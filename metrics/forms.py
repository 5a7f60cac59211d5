from __future__ import annotations

from typing import Any, cast

from django import forms


class SnapshotForm(forms.Form):
    name = forms.CharField(required=False, max_length=100,
                           help_text="Optional, e.g. 'checkout fine-tune, November'.")  # fmt: skip
    min_reward = forms.FloatField(required=False, label="Reward above",
                                  help_text="Traces with a reward must beat it; without one, "
                                            "succeeded traces count as good.")  # fmt: skip
    agent = forms.ChoiceField(required=False)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    failure_mode = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    skill = forms.CharField(required=False, max_length=200, label="Skill in scope",
                            help_text="A skill name (any version) or name@version.")  # fmt: skip
    heldout_percent = forms.IntegerField(min_value=0, max_value=50, initial=10,
                                         label="Held-out %")  # fmt: skip

    def __init__(self, *args: Any, agents: Any = (), modes: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["agent"]).choices = [("", "any agent")] + [
            (a, a) for a in agents
        ]
        cast(forms.ChoiceField, self.fields["failure_mode"]).choices = [("", "any")] + [
            (m.pk, m.label[:80]) for m in modes
        ]
