import type { ButtonHTMLAttributes } from "react";

const VARIANTS = {
  primary: "bg-slate-900 text-white hover:bg-slate-700 disabled:bg-slate-400",
  danger: "bg-rose-700 text-white hover:bg-rose-600 disabled:bg-rose-300",
  success: "bg-emerald-700 text-white hover:bg-emerald-600 disabled:bg-emerald-300",
  secondary: "bg-white text-slate-800 ring-1 ring-inset ring-slate-300 hover:bg-slate-50 disabled:text-slate-600",
};

export function Button({ variant = "primary", className = "", ...props }: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: keyof typeof VARIANTS }) {
  return (
    <button
      {...props}
      className={`inline-flex items-center justify-center gap-2 rounded-md px-3.5 py-2 text-sm font-semibold shadow-sm transition-shadow disabled:cursor-not-allowed ${VARIANTS[variant]} ${className}`}
    />
  );
}
