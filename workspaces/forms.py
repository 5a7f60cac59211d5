from __future__ import annotations

from django import forms

from .models import Scope


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Who will use it, e.g. 'checkout-agent (prod)'.",
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.INGEST, Scope.SKILLS_READ],
    )
